"""Shared by the report tests: validators for the shipped schemas and the JUnit XSD.

Named test_* so it stays with the report tests; its one test checks the validators load.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

DATA = Path(__file__).parent / "data"


def schema_validator(name: str) -> Draft202012Validator:
    """A validator for ``scanner/data/NAME.schema.json`` as the installed package ships it."""
    text = resources.files("scanner").joinpath("data", f"{name}.schema.json").read_text()
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def assert_valid(validator: Draft202012Validator, instance: Any) -> None:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def assert_valid_junit(path: Path) -> None:
    from lxml import etree

    schema = etree.XMLSchema(etree.parse(str(DATA / "junit.xsd")))
    document = etree.parse(str(path))
    assert schema.validate(document), str(schema.error_log)


def test_shipped_schemas_and_the_xsd_load() -> None:
    from lxml import etree

    for name in ("report", "events"):
        assert schema_validator(name).schema["$schema"].endswith("2020-12/schema")
    etree.XMLSchema(etree.parse(str(DATA / "junit.xsd")))
