"""JSON answers for what no route serves: unknown paths (HTTP and WebSocket), wrong methods,
and unexpected server errors, each in the error shape of the API family its path is under.

    /v1/listen...                     Deepgram: {"err_code", "err_msg", "request_id"}
    /v1/audio/..., /v1/models...      OpenAI:   {"error": {"message", "type", "param", "code"}}
    anything else                     the same OpenAI-style body the server's other REST
                                      endpoints (/healthz, /v1/twilio/calls) use

A plain HTTP GET on a WebSocket endpoint (`/v1/listen`, `/v1/realtime`, `/v1/twilio`...)
gets 426 Upgrade Required.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from ..errors import InvalidRequest, StreamscribeError
from . import prerecorded
from .state import state_of

def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def render(connection: HTTPConnection, error: StreamscribeError,
           headers: dict[str, str] | None = None) -> JSONResponse:
    """`error` (counted in the metrics) as a response in the shape of the API family the
    connection's path belongs to."""
    state_of(connection).metrics.error(error.code)
    path = connection.url.path
    if _under(path, "/v1/listen"):
        response = prerecorded.error_response(error)
        response.headers.update(headers or {})
        return response
    return JSONResponse(error.to_openai(), status_code=error.status, headers=headers)


def _websocket_path(app: Any, path: str) -> bool:
    return any(isinstance(route, WebSocketRoute) and route.path_regex.match(path)
               for route in app.router.routes)


def _upgrade_required(connection: HTTPConnection, headers: dict[str, str]) -> JSONResponse:
    headers["Upgrade"] = "websocket"
    also = " (or POST for pre-recorded audio)" if "Allow" in headers else ""
    return render(connection, InvalidRequest(
        f"{connection.url.path} is a WebSocket endpoint: send the Upgrade headers{also}",
        code="upgrade_required", status=426), headers)


def _not_found(method: str, path: str) -> StreamscribeError:
    return InvalidRequest(f"no endpoint {method} {path}", code="not_found", status=404)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own HTTPExceptions (405 from a route, and any other) as JSON."""
    assert isinstance(exc, HTTPException)
    path, method = request.url.path, request.method
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and method == "GET" and _websocket_path(request.app, path):
        return _upgrade_required(request, headers)
    if exc.status_code == 405:
        allowed = headers.get("Allow", "")
        return render(request, InvalidRequest(f"{method} is not allowed on {path}; allowed: "
                                           f"{allowed}", code="method_not_allowed",
                                           status=405), headers)
    if exc.status_code == 404:
        return render(request, _not_found(method, path), headers)
    return render(request, InvalidRequest(str(exc.detail), code=f"http_{exc.status_code}",
                                       status=exc.status_code), headers)


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    """An unexpected exception: a JSON 500 (Starlette still logs the traceback)."""
    return render(request, StreamscribeError("internal server error"))


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """The router's default: a JSON 404 for HTTP, and for WebSocket a refused upgrade with
    the same JSON body (where the server can send one; else a close)."""
    if scope["type"] == "websocket":
        websocket = WebSocket(scope, receive, send)
        response = render(websocket, _not_found("WebSocket", scope["path"]))
        if "websocket.http.response" in scope.get("extensions", {}):
            await websocket.send_denial_response(response)
        else:
            await websocket.close(code=1008, reason="no such endpoint")
        return
    if scope["type"] == "http":
        request = Request(scope, receive, send)
        if scope["method"] == "GET" and _websocket_path(scope["app"], scope["path"]):
            response = _upgrade_required(request, {})
        else:
            response = render(request, _not_found(scope["method"], scope["path"]))
        await response(scope, receive, send)


def exception_handlers() -> dict[Any, Callable[[Request, Exception], Awaitable[JSONResponse]]]:
    return {HTTPException: http_error, Exception: server_error}
