"""Twilio Media Streams at `/v1/twilio`, and the per-speaker call transcripts it produces.

    WS   /v1/twilio                          Twilio connects here (<Connect><Stream url=...>
                                             or <Start><Stream track="both_tracks" url=...>)
    GET  /v1/twilio/calls                    recent calls (summaries)
    GET  /v1/twilio/calls/{callSid}          one call: speakers (= tracks) and time-ordered turns
    WS   /v1/twilio/calls/{callSid}/events   live: call_started, turn, error, call_ended

    calls.py    the call registry: live and finished calls, transcripts, subscribers
    webhook.py  POSTs a finished call's transcript
    media.py    the media stream handler (one WebSocket from Twilio, a LiveStream per track)
    reads.py    the REST reads and the events WebSocket
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route, WebSocketRoute

from .media import media_stream
from .reads import call_events, get_call, list_calls


def routes() -> list[BaseRoute]:
    return [
        WebSocketRoute("/v1/twilio", media_stream),
        Route("/v1/twilio/calls", list_calls),
        Route("/v1/twilio/calls/{call_sid}", get_call),
        WebSocketRoute("/v1/twilio/calls/{call_sid}/events", call_events),
    ]
