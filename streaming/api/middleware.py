"""ASGI middleware around the whole app: HTTP requests in flight (for the drain), and the
status of each batch request (for the metrics).

A client that hangs up before its request body has been read (`ClientDisconnect`) is
ordinary behaviour: one log line, no traceback. Probes (`/healthz`, `/readyz`, `/metrics`)
are not counted: they are answered while draining and must not hold it up. While the
server drains, a new request for work on a connection that was already open is refused
with 503 `server_shutting_down`.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InvalidRequest, Overloaded, StreamscribeError
from .lifecycle import Lifecycle
from .metrics import Metrics

log = logging.getLogger("streamscribe.http")

PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
MAX_QUERY_BYTES = 16 << 10
BATCH = frozenset({"/v1/audio/transcriptions", "/v1/audio/translations", "/v1/listen"})


class RequestTracking:
    """Counts requests in flight and batch statuses; refuses work while draining and query
    strings longer than `MAX_QUERY_BYTES` (uvicorn's HTTP parser itself answers requests whose
    head exceeds its 64 KiB buffer, in plain text)."""

    def __init__(self, app: ASGIApp, lifecycle: Lifecycle, metrics: Metrics) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.metrics = metrics

    def _refusal(self, scope: Scope) -> StreamscribeError | None:
        if self.lifecycle.draining:
            return Overloaded("the server is shutting down; retry on another instance",
                              code="server_shutting_down")
        if len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
            return InvalidRequest(f"the query string is longer than {MAX_QUERY_BYTES} bytes",
                                  code="query_too_long", status=414)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await JSONResponse(refusal.to_openai(), status_code=refusal.status,
                               headers={"Connection": "close"})(scope, receive, send)
            return
        path = scope["path"]
        status = 499                    # nginx's "client closed request", if nothing is sent

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with self.lifecycle.request():
            try:
                await self.app(scope, receive, send_and_note)
            except ClientDisconnect:
                log.info("%s %s: the client hung up before its request was read",
                         scope["method"], path)
            except Exception:
                status = 500
                raise
            finally:
                if path in BATCH and scope["method"] == "POST":
                    self.metrics.batch_request(path, status)
