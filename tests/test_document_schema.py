"""The typed shapes (scanner/report/document.py) and the published JSON Schemas say the same.

The Structs are what scanner writes and reads; the schemas are what consumers validate
against. Each shape's fields must be exactly the properties its schema lists, and the
categories each schema allows exactly the Category values, so neither can drift.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from scanner.models import Category, TlsInfo
from scanner.report import document as d


def schema(name: str) -> dict[str, Any]:
    text = resources.files("scanner").joinpath("data", f"{name}.schema.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def properties(definition: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    """Every property a definition lists, following allOf / $ref within the schema."""
    found = set(definition.get("properties", {}))
    for part in definition.get("allOf", []):
        if "$ref" in part:
            found |= properties(defs[part["$ref"].rsplit("/", 1)[1]], defs)
        else:
            found |= properties(part, defs)
    return found


ENVELOPE = {"event", "timestamp", "level"}
SHAPES = [
    ("events", "scan.started", d.StartEntry, ENVELOPE),
    ("events", "dns.result", d.DnsEntry, ENVELOPE),
    ("events", "probe.result", d.ProbeEntry, ENVELOPE),
    ("events", "target.result", d.TargetOutcome, ENVELOPE),
    ("events", "path.hop", d.HopEntry, ENVELOPE),
    ("events", "scan.finished", d.SummaryEntry, ENVELOPE),
    ("events", "target.waiting", d.WaitEntry, ENVELOPE),
    ("events", "target.ready", d.WaitEntry, ENVELOPE),
    ("events", "waiting", d.WaitingEntry, set()),
    ("report", "waiting", d.WaitingEntry, set()),
    ("report", "dns", d.DnsEntry, set()),
    ("report", "probe", d.ProbeEntry, set()),
    ("report", "report_target", d.TargetEntry, set()),
    ("report", "finished", d.SummaryEntry, set()),
    ("events", "tls", TlsInfo, set()),
    ("events", "explain.result", d.ExplainEntry, ENVELOPE),
    ("events", "explained_address", d.AddressExplanation, set()),
    ("events", "route", d.RouteEntry, set()),
    ("report", "tls", TlsInfo, set()),
]


@pytest.mark.parametrize(("name", "definition", "shape", "extra"), SHAPES)
def test_each_shape_has_exactly_its_schemas_fields(
    name: str, definition: str, shape: type, extra: set[str]
) -> None:
    defs = schema(name)["$defs"]
    assert properties(defs[definition], defs) == set(shape.__struct_fields__) | extra


def test_the_report_document_has_exactly_its_schemas_fields() -> None:
    assert set(schema("report")["properties"]) == set(d.ReportDocument.__struct_fields__)


@pytest.mark.parametrize("name", ["events", "report"])
def test_the_schemas_allow_every_category_and_no_other(name: str) -> None:
    allowed = set(schema(name)["$defs"]["category"]["enum"])
    assert allowed == {c.value for c in Category} - {"resolved"}
