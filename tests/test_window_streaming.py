"""Streamed through /v1/listen, the clips a short window without guards gets wrong (a
repetition loop, invented tails, a sentence cut short) come out whole, with every word
inside its utterance: the adaptive window's guards at work end to end."""

from __future__ import annotations

import httpx

from streaming.eval.corpus import item
from streaming.eval.scoring import error_rate, normalize

from .test_listen_server import conversation, listen_url
from .wsclient import pcm_bytes, results, stream, transcript

# unguarded 3-10 s windows gave: "in being comparatively modern, in being comparatively
# modern,", "... painful to myself. Bzzzz...", "... sauce. Soss.", "She had a dark suit"
CLIPS = ["en_lj_LJ001-0002", "en_ls_2412-153948-0000", "en_ls_1089-134686-0000",
         "en_timit_LDC93S1"]


def repeated_phrase(text: str, length: int = 3) -> bool:
    words = normalize(text).split()
    return any(words[i:i + length] == words[i + length:i + 2 * length]
               for i in range(len(words) - 2 * length + 1))


async def test_streamed_finals_stop_at_the_end_of_the_speech(server):
    audio, spans = conversation(CLIPS)
    messages = await stream(listen_url(server, language="en"), pcm_bytes(audio), speed=2.0)
    finals = results(messages, final=True)
    assert finals
    # a clip with a long pause inside may come as two finals: judge each clip's finals together
    for clip_id, (start, end) in zip(CLIPS, spans):
        mine = [f for f in finals if start - 0.6 <= f["start"] < end]
        assert mine, (clip_id, [transcript(f) for f in finals])
        text = " ".join(transcript(f) for f in mine)
        reference = item(clip_id)
        assert error_rate(reference.references(), text) < 0.3, text
        assert not repeated_phrase(text), text
        words = [w for f in mine for w in f["channel"]["alternatives"][0]["words"]]
        assert len(words) <= len(normalize(reference.text).split()) + 2, text
        assert all(start - 0.6 <= w["start"] <= w["end"] <= end + 0.3 for w in words), text
    assert sum(len([f for f in finals if s - 0.6 <= f["start"] < e]) for s, e in spans) == \
        len(finals)                                     # no final outside the speech

    async with httpx.AsyncClient() as client:
        base = (await client.get(f"{server.http_url}/healthz")).json()["models"]["base"]
    assert 0 < base["model_calls"] <= base["calls"]     # batched jobs share a model call
