"""API-key checks shared by every endpoint.

Accepted: `Authorization: Token KEY` (Deepgram), `Authorization: Bearer KEY` (OpenAI),
for browsers the WebSocket subprotocols `token, KEY` (as Deepgram's JS SDK sends) or `?token=KEY`.
"""

from __future__ import annotations

import hmac
from typing import Mapping, Sequence

from starlette.requests import HTTPConnection

from ..errors import AuthError
from .state import state_of


def _matches(candidate: str, keys: Sequence[str]) -> bool:
    return any(hmac.compare_digest(candidate.encode(), key.encode()) for key in keys)


def check_auth(keys: Sequence[str], headers: Mapping[str, str], query: Mapping[str, str],
               subprotocols: Sequence[str] = ()) -> str | None:
    """Raise AuthError unless a configured key is presented; return the subprotocol to accept."""
    if not keys:
        return None
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() in ("token", "bearer") and _matches(value.strip(), keys):
        return None
    if len(subprotocols) >= 2 and subprotocols[0] == "token" and _matches(subprotocols[1], keys):
        return "token"
    if "token" in query and _matches(query["token"], keys):
        return None
    if authorization or "token" in query or subprotocols:
        raise AuthError("invalid API key")
    raise AuthError("missing API key: send 'Authorization: Token KEY' or 'Bearer KEY'")


def authorize(connection: HTTPConnection) -> str | None:
    """`check_auth` against the app's keys, with what this request or WebSocket presents."""
    return check_auth(state_of(connection).config.api_keys, connection.headers,
                      connection.query_params, connection.scope.get("subprotocols", []))
