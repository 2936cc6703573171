"""The official `openai` SDK opens realtime transcription sessions on our `/v1/realtime`.

`client.realtime.connect(..., extra_query={"intent": "transcription"})` with the SDK's
own session and buffer methods, corpus speech at 24 kHz. The SDK parses events without
validation, so every event is also validated with the SDK's pydantic model for its type:
an SDK user gets the fields OpenAI's own server sends.
"""

from __future__ import annotations

import asyncio
import base64
import json
import typing
from typing import Any

import numpy as np
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeServerEvent
from pydantic import BaseModel

from streaming.audio import Resampler
from streaming.eval import corpus
from streaming.eval.scoring import error_rate

from .conftest import timeout

CLIPS = ("en_lj_LJ001-0002", "en_lj_LJ001-0004")
MODELS: dict[str, type[BaseModel]] = {
    typing.get_args(model.model_fields["type"].annotation)[0]: model
    for model in typing.get_args(typing.get_args(RealtimeServerEvent)[0])}


def validated(raw: bytes | str) -> BaseModel:
    """The event as the SDK's model for its type, strictly validated."""
    data = json.loads(raw)
    return MODELS[data["type"]].model_validate(data)


def to_24k(samples: np.ndarray) -> bytes:
    resampler = Resampler(16_000, 24_000)
    audio = np.concatenate([resampler.feed(samples), resampler.flush()])
    return audio.astype("<i2").tobytes()


def speech_24k(gap_s: float = 1.5) -> tuple[bytes, list[str]]:
    """The clips at 24 kHz with silences between them, and their reference texts."""
    silence = np.zeros(int(gap_s * 16_000), np.int16)
    parts = [silence]
    for clip in CLIPS:
        parts += [corpus.item(clip).mono16k(), silence]
    return to_24k(np.concatenate(parts)), [corpus.item(c).text for c in CLIPS]


def client(server: Any) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="not-needed-here", websocket_base_url=f"{server.ws_url}/v1")


async def send_audio(connection: Any, pcm: bytes, rate: int = 24_000,
                     speed: float = 2.0, chunk_ms: int = 100) -> None:
    step = rate * 2 * chunk_ms // 1000
    loop = asyncio.get_running_loop()
    started = loop.time()
    for index, offset in enumerate(range(0, len(pcm), step)):
        await connection.input_audio_buffer.append(
            audio=base64.b64encode(pcm[offset:offset + step]).decode())
        if speed:
            due = started + (index + 1) * chunk_ms / 1000 / speed
            await asyncio.sleep(max(0.0, due - loop.time()))


async def receive_until(connection: Any, done: typing.Callable[[list[BaseModel]], bool],
                        events: list[BaseModel]) -> None:
    async with asyncio.timeout(timeout(120)):
        while not done(events):
            events.append(validated(await connection.recv_bytes()))


def of_type(events: list[BaseModel], kind: str) -> list[Any]:
    return [e for e in events if e.type == kind]


async def test_server_vad_session_transcribes_corpus_speech(server):
    pcm, references = speech_24k()
    events: list[BaseModel] = []
    async with client(server).realtime.connect(
            model="gpt-realtime", extra_query={"intent": "transcription"}) as connection:
        await receive_until(connection, lambda e: bool(e), events)
        await connection.session.update(session={
            "type": "transcription",
            "audio": {"input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500,
                                   "prefix_padding_ms": 300, "threshold": 0.5}}}})
        await receive_until(connection, lambda e: bool(of_type(e, "session.updated")), events)
        # A commit before any audio: OpenAI's error for an empty buffer; the session goes on.
        await connection.input_audio_buffer.commit()
        await receive_until(connection, lambda e: bool(of_type(e, "error")), events)
        sender = asyncio.create_task(send_audio(connection, pcm))
        await receive_until(connection, lambda e: len(of_type(
            e, "conversation.item.input_audio_transcription.completed")) >= len(CLIPS), events)
        await sender

    created, updated = events[0], of_type(events, "session.updated")[0]
    assert created.type == "session.created" and created.session.type == "transcription"
    turn = updated.session.audio.input.turn_detection
    assert turn.type == "server_vad" and turn.silence_duration_ms == 500
    assert updated.session.audio.input.transcription.language == "en"
    error = of_type(events, "error")[0].error
    assert error.code == "input_audio_buffer_commit_empty" and error.type == "invalid_request_error"

    started = of_type(events, "input_audio_buffer.speech_started")
    stopped = of_type(events, "input_audio_buffer.speech_stopped")
    committed = of_type(events, "input_audio_buffer.committed")
    completed = of_type(events, "conversation.item.input_audio_transcription.completed")
    deltas = of_type(events, "conversation.item.input_audio_transcription.delta")
    assert len(completed) == len(CLIPS)
    # One item per utterance, announced in order: started → stopped → committed → completed.
    items = [c.item_id for c in completed]
    assert [s.item_id for s in started][:len(items)] == items
    assert [s.item_id for s in stopped][:len(items)] == items
    assert [c.item_id for c in committed] == items
    assert committed[0].previous_item_id is None and committed[1].previous_item_id == items[0]
    assert all(s.audio_start_ms < t.audio_end_ms for s, t in zip(started, stopped))
    assert 1200 <= started[0].audio_start_ms <= 2000   # the clip starts 1.5 s in
    for reference, event in zip(references, completed):
        assert error_rate([reference], event.transcript) < 0.15, event.transcript
        assert event.usage.type == "duration" and event.usage.seconds > 1
    # Deltas only append: per item they spell the start of its transcript (confirmed partial
    # words come from the faster partial model, so a word may still differ in the final).
    assert deltas and {d.item_id for d in deltas} <= set(items)
    for event in completed:
        text = "".join(d.delta for d in deltas if d.item_id == event.item_id)
        prefix = " ".join(event.transcript.split()[:len(text.split())])
        assert error_rate([prefix], text) < 0.5, (text, event.transcript)


async def test_manual_commits_without_turn_detection(server):
    pcm, references = speech_24k()
    events: list[BaseModel] = []
    async with client(server).realtime.connect(
            model="gpt-4o-transcribe", extra_query={"intent": "transcription"}) as connection:
        await connection.session.update(session={
            "type": "transcription",
            "audio": {"input": {"turn_detection": None, "transcription": {"language": "en"}}}})
        await receive_until(connection, lambda e: bool(of_type(e, "session.updated")), events)
        await send_audio(connection, pcm, speed=0)   # time comes from samples, not the clock
        await connection.input_audio_buffer.commit()
        await receive_until(connection, lambda e: bool(of_type(
            e, "conversation.item.input_audio_transcription.completed")), events)

    assert not of_type(events, "input_audio_buffer.speech_started")
    assert of_type(events, "session.updated")[0].session.audio.input.turn_detection is None
    committed = of_type(events, "input_audio_buffer.committed")
    completed = of_type(events, "conversation.item.input_audio_transcription.completed")
    assert len(committed) == 1 and completed[0].item_id == committed[0].item_id
    # The pause between the clips does not split the committed item.
    assert error_rate([" ".join(references)], completed[0].transcript) < 0.15, completed


async def test_bad_events_get_error_events_and_the_session_goes_on(server):
    events: list[BaseModel] = []
    async with client(server).realtime.connect(
            model="gpt-4o-transcribe", extra_query={"intent": "transcription"}) as connection:
        await connection.send({"type": "input_audio_buffer.append", "audio": "not base64!",
                               "event_id": "client-1"})
        await connection.send({"type": "response.create", "event_id": "client-2"})
        await connection.session.update(session={
            "type": "transcription", "audio": {"input": {"format": {"type": "audio/pcmu"}}}})
        await receive_until(connection, lambda e: bool(of_type(e, "session.updated")), events)

    errors = [e.error for e in of_type(events, "error")]
    assert [(e.code, e.param, e.event_id) for e in errors] == [
        ("invalid_value", "audio", "client-1"), ("invalid_value", "type", "client-2")]
    assert all(e.type == "invalid_request_error" and e.message for e in errors)
    fmt = of_type(events, "session.updated")[0].session.audio.input.format
    assert fmt.type == "audio/pcmu"


async def test_beta_client_and_transcription_session_update(server):
    """The SDK's beta client (`client.beta.realtime`, `OpenAI-Beta: realtime=v1`) and the beta
    `transcription_session.update`. Its `transcription_session.updated` is checked with the
    beta models, except `client_secret`, which OpenAI leaves out over the WebSocket although
    the SDK's type requires it."""
    from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
    from openai.types.beta.realtime.transcription_session import (
        InputAudioTranscription,
        TurnDetection,
    )

    beta_models: dict[str, type[BaseModel]] = {
        typing.get_args(model.model_fields["type"].annotation)[0]: model
        for model in typing.get_args(typing.get_args(BetaServerEvent)[0])}
    pcm, references = speech_24k()
    received: list[dict[str, Any]] = []
    async with client(server).beta.realtime.connect(
            model="gpt-4o-transcribe", extra_query={"intent": "transcription"}) as connection:
        await connection.transcription_session.update(session={
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 600}})
        sender = asyncio.create_task(send_audio(connection, pcm, speed=0))
        async with asyncio.timeout(timeout(120)):
            while sum(m["type"].endswith(".completed") for m in received) < len(CLIPS):
                received.append(json.loads(await connection.recv_bytes()))
        await sender

    updated = next(m for m in received if m["type"] == "transcription_session.updated")
    session = updated["session"]
    assert session["input_audio_format"] == "pcm16"
    assert InputAudioTranscription.model_validate(session["input_audio_transcription"]).language == "en"
    assert TurnDetection.model_validate(session["turn_detection"]).silence_duration_ms == 600
    for message in received:
        if message["type"] != "transcription_session.updated":
            beta_models[message["type"]].model_validate(message)
    completed = [m for m in received if m["type"].endswith(".completed")]
    text = " ".join(m["transcript"] for m in completed)
    assert error_rate([" ".join(references)], text) < 0.15, text


async def test_clear_drops_the_uncommitted_audio(server):
    """Manual mode: the first clip is appended then cleared, the second committed; only the
    second is transcribed, under the committed item's id."""
    silence = np.zeros(8_000, np.int16)
    first, second = (to_24k(np.concatenate([silence, corpus.item(c).mono16k(), silence]))
                     for c in CLIPS)
    events: list[BaseModel] = []
    async with client(server).realtime.connect(
            model="gpt-4o-transcribe", extra_query={"intent": "transcription"}) as connection:
        await connection.session.update(session={
            "type": "transcription",
            "audio": {"input": {"turn_detection": None, "transcription": {"language": "en"}}}})
        await send_audio(connection, first, speed=0)
        await connection.input_audio_buffer.clear()
        await send_audio(connection, second, speed=0)
        await connection.input_audio_buffer.commit()
        await receive_until(connection, lambda e: bool(of_type(
            e, "conversation.item.input_audio_transcription.completed")), events)
    assert of_type(events, "input_audio_buffer.cleared")
    committed = of_type(events, "input_audio_buffer.committed")
    completed = of_type(events, "conversation.item.input_audio_transcription.completed")
    assert len(committed) == len(completed) == 1
    assert completed[0].item_id == committed[0].item_id
    reference = corpus.item(CLIPS[1]).text
    assert error_rate([reference], completed[0].transcript) < 0.15, completed[0].transcript
