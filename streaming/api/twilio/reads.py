"""Reading calls: the REST listing and records, and the live events WebSocket."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from ...errors import InvalidRequest, StreamscribeError
from ..auth import authorize
from ..listen import reject
from .calls import registry_of


async def list_calls(request: Request) -> JSONResponse:
    authorize(request)
    return JSONResponse({"calls": [c.summary() for c in registry_of(request).calls()]})


async def get_call(request: Request) -> JSONResponse:
    authorize(request)
    call_sid = request.path_params["call_sid"]
    call = registry_of(request).get(call_sid)
    if call is None:
        raise InvalidRequest(f"no call {call_sid!r} (unknown, or no longer kept)",
                             code="call_not_found", param="callSid", status=404)
    return JSONResponse(call.to_json())


async def call_events(websocket: WebSocket) -> None:
    """Live events of one call: what was said so far, then each event as it comes; the
    socket closes after `call_ended` (1013 if this subscriber fell too far behind)."""
    try:
        subprotocol = authorize(websocket)
        queue, call = registry_of(websocket).subscribe(websocket.path_params["call_sid"])
        # taken in the same step as subscribing: every later turn comes through the queue
        snapshot = ({"type": "call_started", "call": call.summary()},
                    *({"type": "turn", "call_sid": call.call_sid, **t.to_json()}
                      for t in call.conversation.turns)) if call is not None else ()
        ended = call.to_json() if call is not None and call.status != "live" else None
    except StreamscribeError as exc:
        await reject(websocket, exc)
        return
    call_sid = websocket.path_params["call_sid"]
    registry = registry_of(websocket)
    await websocket.accept(subprotocol=subprotocol)
    try:
        for earlier in snapshot:        # catch up: what was said before this subscriber came
            await websocket.send_json(earlier)
        if ended is not None:
            await websocket.send_json({"type": "call_ended", "call": ended})
            await websocket.close(code=1000)
            return
        receiver = asyncio.create_task(websocket.receive())   # notices the subscriber leaving
        while True:
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                getter.cancel()
                return
            message = getter.result()
            if message is None:
                receiver.cancel()
                await websocket.close(code=1000)
                return
            await websocket.send_json(message)
            if queue.overflowed and queue.empty():
                receiver.cancel()
                await websocket.close(code=1013, reason="subscriber too slow; messages dropped")
                return
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        registry.unsubscribe(call_sid, queue)
