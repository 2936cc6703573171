"""Tiny endpointing (LiveKit's Deepgram plugin asks for 25 ms) cuts one read sentence into many
short finals. Each short final gets the speech before it as left context and keeps only its
own words (real server, real model, LibriSpeech read in pieces)."""

from dataclasses import replace

import numpy as np
import pytest

from streaming.config import ServerConfig, StreamConfig
from streaming.core.agreement import word_key
from streaming.eval.corpus import item
from streaming.eval.scoring import error_rate

from .test_listen_server import listen_url, silence
from .wsclient import pcm_bytes, results, stream, transcript

# Sentences that 25 ms endpointing cuts into 10 and 6 finals.
CLIPS = ["en_ls_1995-1837-0001", "en_ls_1272-141231-0002"]


@pytest.fixture(scope="module")
def no_context_server(start_server):
    config = ServerConfig(port=0)
    return start_server(config, stream=replace(config.stream, left_context_s=0.0))


async def finals_of(server, clip_id: str, **params: str) -> list[str]:
    audio = np.concatenate([silence(0.3), item(clip_id).mono16k(), silence(1.0)])
    messages = await stream(listen_url(server, interim_results="false", **params),
                            pcm_bytes(audio), speed=0)
    return [transcript(f) for f in results(messages, final=True) if transcript(f)]


async def test_short_finals_with_left_context_read_better(server, no_context_server):
    wer = {"context": 0.0, "alone": 0.0}
    for clip_id in CLIPS:
        reference = item(clip_id).references()
        cut = await finals_of(server, clip_id, endpointing="25")
        alone = await finals_of(no_context_server, clip_id, endpointing="25")
        whole = await finals_of(server, clip_id)
        assert len(cut) >= len(whole) + 3, "25 ms endpointing did not cut the sentence"
        with_context = error_rate(reference, " ".join(cut))
        without = error_rate(reference, " ".join(alone))
        assert with_context <= without, (cut, alone)
        wer["context"] += with_context
        wer["alone"] += without
        # No word doubled across a cut: no final starts with the word the one before ended on.
        for before, after in zip(cut, cut[1:]):
            assert word_key(before.split()[-1]) != word_key(after.split()[0]), (before, after)
    # Measured: 0.13 and 0.19 with context, 0.20 and 0.19 without (0.00 and 0.10 uncut).
    assert wer["context"] < wer["alone"], wer
