"""The official deepgram-sdk (v7, `listen.v1`) streams a corpus file through our `/v1/listen`.

The SDK takes a custom environment (base URLs), so it talks to the test server unchanged.
Its message classes are pydantic models; every message must also pass their strict
validation, so an SDK user gets the same fields as from Deepgram.
"""

from __future__ import annotations

import asyncio

from deepgram import AsyncDeepgramClient
from deepgram.environment import DeepgramClientEnvironment
from deepgram.listen.v1.types import (
    ListenV1Error,
    ListenV1Metadata,
    ListenV1Results,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)

from streaming.eval import corpus
from clients.file_stream import audio_chunks
from streaming.eval.scoring import error_rate

from .conftest import timeout

CLIP = "en_lj_LJ001-0001"   # 9.7 s, LJ Speech


def sdk_client(server) -> AsyncDeepgramClient:
    environment = DeepgramClientEnvironment(base=server.http_url, production=server.ws_url,
                                            agent=server.ws_url, agent_rest=server.http_url)
    return AsyncDeepgramClient(api_key="not-needed-here", environment=environment)


async def test_deepgram_sdk_receives_interim_and_final_results(server):
    item = corpus.item(CLIP)
    samples, rate = item.samples()
    received = []
    async with sdk_client(server).listen.v1.connect(
            model="nova-3", encoding="linear16", sample_rate=str(rate), channels="1",
            interim_results="true", vad_events="true", utterance_end_ms="1000",
            endpointing="600", language="en", punctuate="true", smart_format="true") as socket:

        async def send() -> None:
            # A message the server does not know: a warning (Error), and the stream goes on.
            await socket._send({"type": "NoSuchMessage"})
            loop = asyncio.get_running_loop()
            started = loop.time()
            sent = 0.0
            for chunk in audio_chunks(samples, rate, 100):
                await socket.send_media(chunk)
                sent += len(chunk) / 2 / rate
                await asyncio.sleep(max(0.0, started + sent - loop.time()))  # real time
            await socket.send_finalize()
            await socket.send_close_stream()

        sender = asyncio.create_task(send())
        async with asyncio.timeout(timeout(90)):
            async for message in socket:
                received.append(message)
        await sender

    results = [m for m in received if isinstance(m, ListenV1Results)]
    finals = [m for m in results if m.is_final]
    interims = [m for m in results if not m.is_final]
    assert interims and finals, [type(m).__name__ for m in received]
    assert any(isinstance(m, ListenV1SpeechStarted) for m in received)
    errors = [m for m in received if isinstance(m, ListenV1Error)]
    assert errors and errors[0].description, errors
    assert isinstance(received[-1], ListenV1Metadata), received[-1]
    text = " ".join(f.channel.alternatives[0].transcript for f in finals)
    assert error_rate(item.references(), text) < 0.15, text
    words = [w for f in finals for w in f.channel.alternatives[0].words]
    assert words and all(0 <= w.start <= w.end <= item.duration_s + 0.1 for w in words)
    assert finals[-1].metadata.request_id == received[-1].request_id

    # The SDK parses leniently (a model built without validation when a field is missing);
    # validating again catches any shape Deepgram's own schema would refuse.
    for message in received:
        if isinstance(message, (ListenV1Results, ListenV1Metadata, ListenV1SpeechStarted,
                                ListenV1UtteranceEnd, ListenV1Error)):
            type(message).model_validate(message.model_dump(by_alias=True))
