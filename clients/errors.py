"""The client's exceptions.

    ClientError                  base of everything this package raises
    ├── CannotConnect            no connection could be opened (refused, DNS, timeout)
    ├── ConnectionRejected       the server refused the upgrade (HTTP 400 bad query, 401 auth)
    ├── ConnectionLost           the connection ended without a normal close
    └── StreamClosed             send/finalize after close() or after the connection ended
"""

from __future__ import annotations

__all__ = ["CannotConnect", "ClientError", "ConnectionLost", "ConnectionRejected", "StreamClosed"]


class ClientError(Exception):
    pass


class CannotConnect(ClientError):
    """The TCP/TLS connection or the handshake could not be completed (a retry may work)."""


class ConnectionRejected(ClientError):
    """HTTP status and body of a refused upgrade; `message` is the server's explanation."""

    def __init__(self, status: int, body: str = "") -> None:
        self.status = status
        self.body = body
        self.message = _explain(body) or f"HTTP {status}"
        super().__init__(f"server rejected the stream (HTTP {status}): {self.message}")

    @property
    def permanent(self) -> bool:
        """A retry with the same request will fail the same way (bad query, bad key)."""
        return 400 <= self.status < 500 and self.status not in (408, 429)


class ConnectionLost(ClientError):
    """The connection broke (network, server restart) or closed with an error code."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        self.reason = reason
        self.code = code
        super().__init__(f"connection lost: {reason}" + (f" (code {code})" if code else ""))


class StreamClosed(ClientError):
    pass


def _explain(body: str) -> str:
    import json

    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return body.strip()[:500]
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, dict):
            message = inner.get("message") or inner.get("err_msg") or inner.get("description")
            param = inner.get("param")
            if message:
                return f"{message} (parameter {param})" if param else str(message)
        elif isinstance(inner, str):
            return inner
    return body.strip()[:500]
