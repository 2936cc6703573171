"""The spellings accepted for a boolean, everywhere: query parameters, form fields, environment."""

from __future__ import annotations

TRUE = frozenset({"true", "1", "yes", "on"})
FALSE = frozenset({"false", "0", "no", "off"})


def parse_bool(raw: str) -> bool:
    """An accepted spelling (any case, surrounding space ignored) as a bool; ValueError otherwise."""
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"{raw!r} is not a boolean: use true or false")
