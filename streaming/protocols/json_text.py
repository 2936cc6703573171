"""JSON text frames from clients, parsed with a bounded size and nesting depth.

`json.loads` recurses once per nesting level: `"[" * 100000` raises RecursionError (a
RuntimeError, easily mistaken for a closed socket), and deep documents cost stack even
when they parse. Every protocol parses client text through `parse_json_text`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ProtocolError

MAX_DEPTH = 32          # no client message of ours nests deeper than 3
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def parse_json_text(text: str, max_chars: int, max_depth: int = MAX_DEPTH) -> object:
    """The JSON value of `text`; raises ValueError whose message completes "the message ..."
    for the client ("is not JSON: ...", "is too large ...", "is nested deeper ...")."""
    if len(text) > max_chars:
        raise ValueError(f"is too large: {len(text)} characters (limit {max_chars})")
    # Counting brackets is cheap; the exact depth is only worked out when the count is high.
    if text.count("[") + text.count("{") > max_depth and _depth(text) > max_depth:
        raise ValueError(f"is nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"is not JSON: {exc}") from None


def parse_typed_message(text: str, max_chars: int, what: str) -> dict[str, Any]:
    """A client message that must be a JSON object with a string "type" (Deepgram's control
    messages, realtime events); raises ProtocolError `invalid_json` or `invalid_message`,
    naming the message as `what` ("text frame", "the event")."""
    try:
        message = parse_json_text(text, max_chars)
    except ValueError as exc:
        raise ProtocolError(f"{what} {exc}", code="invalid_json") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError(f'{what} must be a JSON object with a string "type"',
                            code="invalid_message", param="type")
    return message


def _depth(text: str) -> int:
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest
