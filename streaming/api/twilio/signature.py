"""Twilio's signature on the Media Streams WebSocket upgrade (`X-Twilio-Signature`).

Twilio signs every request it makes with the account's Auth Token, the Media Streams
handshake included: base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value,
sorted)). The handshake is a GET, so only the URL is signed: the `<Stream url>` exactly as
the TwiML gave it (`wss://host/v1/twilio`). Behind a TLS-terminating proxy the server sees
`ws://` and maybe another host, so the URL is taken from `twilio.public_url` when it is set,
else rebuilt from the Host header and X-Forwarded-Proto.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Mapping, Sequence

from starlette.websockets import WebSocket

HEADER = "x-twilio-signature"


def compute(auth_token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    """The X-Twilio-Signature Twilio sends for a request to `url` with POST `params`."""
    payload = url + "".join(name + value for name, value in sorted((params or {}).items()))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _urls(websocket: WebSocket, public_url: str) -> list[str]:
    if public_url:
        return [public_url]
    headers = websocket.headers
    host = headers.get("x-forwarded-host") or headers.get("host", "")
    secure = headers.get("x-forwarded-proto", "") in ("https", "wss") \
        or websocket.url.scheme == "wss"
    base = f"{'wss' if secure else 'ws'}://{host}{websocket.url.path}"
    without_port = base.replace(f":{websocket.url.port}", "", 1) if websocket.url.port else base
    return list(dict.fromkeys([base, without_port]))   # Twilio may sign either form


def signed_by_twilio(websocket: WebSocket, auth_tokens: Sequence[str], public_url: str) -> bool:
    """Whether the upgrade carries a valid signature by one of `auth_tokens`."""
    signature = websocket.headers.get(HEADER, "")
    if not signature:
        return False
    return any(hmac.compare_digest(compute(token, url), signature)
               for token in auth_tokens for url in _urls(websocket, public_url))
