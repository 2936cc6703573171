"""Query-string values, read strictly: a parameter given twice is refused unless it is a
list, and numbers only in their canonical ASCII form.

Python's `int()` accepts `16_000`, ` 16000 ` and full-width or Arabic-Indic digits; a client
that sends those is almost certainly not sending what it means, so it gets a 400 naming the
parameter instead.
"""

from __future__ import annotations

import re
from typing import Collection, Iterable, Mapping

from ..errors import InvalidParameter

_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def grouped(params: Iterable[tuple[str, str]] | Mapping[str, str], known: Collection[str] | None,
            repeatable: Collection[str] = ()) -> dict[str, list[str]]:
    """Each parameter's values in order; raises InvalidParameter for one not `known` (None:
    any name), or one given more than once that is not `repeatable`."""
    items = params.items() if isinstance(params, Mapping) else params
    values: dict[str, list[str]] = {}
    for name, value in items:
        if known is not None and name not in known:
            raise InvalidParameter(f"unknown parameter {name!r}", param=name)
        values.setdefault(name, []).append(value)
    for name, given in values.items():
        if len(given) > 1 and name not in repeatable:
            raise InvalidParameter(f"{name} given {len(given)} times; give it once", param=name)
    return values


def single_valued(params: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The parameters as a mapping; raises InvalidParameter for one given more than once
    (the caller checks the names)."""
    return {name: given[0] for name, given in grouped(params, None).items()}


def canonical_int(raw: str, name: str) -> int:
    """`raw` as an integer written plainly (`16000`, `-5`); raises InvalidParameter."""
    if not _INTEGER.fullmatch(raw):
        raise InvalidParameter(f"{name}={raw!r}: expected an integer such as 16000", param=name)
    return int(raw)


def canonical_float(raw: str, name: str) -> float:
    """`raw` as a decimal number written plainly (`0.5`, `2`); raises InvalidParameter."""
    if not _DECIMAL.fullmatch(raw):
        raise InvalidParameter(f"{name}={raw!r}: expected a number such as 0.5", param=name)
    return float(raw)
