"""Non-ASCII names to the ASCII form DNS and the hosts file see: IDNA 2008 with UTS 46.

glibc 2.36's getaddrinfo (``AI_IDN``, as ``getent ahosts`` sets it) hands a non-ASCII name to
libidn2's ``idn2_lookup_ul`` with no flags: UTS 46 processing, non-transitional, so ``ß``
stays ``ß`` (``straße`` -> ``xn--strae-oqa``) where IDNA 2003 made it ``ss``. The ``idna``
package does the same processing (``uts46=True, transitional=False``). An ASCII name is left
exactly as written, as glibc leaves it (case included: DNS compares without case).
"""

from __future__ import annotations


class IdnaError(ValueError):
    """The name cannot be encoded (glibc: EAI_IDN_ENCODE)."""


def to_ascii(name: str) -> str:
    """``name`` as DNS sees it; raises :class:`IdnaError` for a name IDNA 2008 refuses."""
    if name.isascii():
        return name
    if "\\" in name:  # glibc refuses a backslash in a non-ASCII name
        raise IdnaError(f"{name!r}: a backslash in a non-ASCII name")
    import idna  # only for non-ASCII names: keeps the start-up of every other scan lean

    try:
        return str(idna.encode(name, uts46=True, transitional=False).decode("ascii"))
    except idna.IDNAError as exc:
        raise IdnaError(f"{name!r} is not a valid IDNA 2008 name: {exc}") from None
