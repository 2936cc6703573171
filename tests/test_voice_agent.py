"""The voice-agent demo: turn-taking logic (pure) and a scripted call against the real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from demos.voice_agent.__main__ import SCRIPT
from demos.voice_agent.tts import espeak
from demos.voice_agent.turns import (
    EchoAgent,
    FunctionAgent,
    Speak,
    StopSpeaking,
    TurnTaker,
)
from streaming.eval.corpus import item
from streaming.eval.scoring import error_rate

from .conftest import timeout
from .virtual_mic import capturing, play

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Final:
    text: str
    start: float
    duration: float
    speech_final: bool = True
    from_finalize: bool = False


def fake_voice(text: str) -> tuple[np.ndarray, int]:
    return np.ones(1000 * len(text.split()), np.int16), 10_000      # 0.1 s per word


def test_final_ends_the_turn_and_the_reply_plays_for_its_sample_count():
    taker = TurnTaker(EchoAgent(), fake_voice)
    assert taker.on_final(Final("one two", 0.5, 1.0, speech_final=False), now=1.6) == []
    [speak] = taker.on_final(Final("three", 1.6, 0.4), now=2.5)
    assert isinstance(speak, Speak) and speak.playback.text == "You said: one two three"
    assert speak.playback.duration == pytest.approx(0.5) and taker.state == "speaking"
    assert taker.turns[0].text == "one two three" and taker.turns[0].end == pytest.approx(2.0)
    taker.tick(2.99)
    assert taker.state == "speaking"
    taker.tick(3.0)                                  # 5000 samples at 10 kHz: done at 2.5 + 0.5
    assert taker.state == "listening"
    agent = taker.turns[-1]
    assert (agent.role, agent.interrupted, agent.played_s) == ("agent", False, pytest.approx(0.5))


def test_speech_started_while_speaking_is_a_barge_in():
    taker = TurnTaker(EchoAgent(), fake_voice)
    taker.on_final(Final("a b c d e f g h i", 0.0, 2.0), now=3.0)         # 1.0 s reply
    [stop] = taker.on_speech_started(timestamp=3.25, now=3.4)
    assert isinstance(stop, StopSpeaking) and stop.played_samples == 4000
    agent = taker.turns[-1]
    assert agent.interrupted and agent.barge_in_at == 3.25 and agent.played_s == pytest.approx(0.4)
    assert taker.state == "listening"
    assert taker.on_speech_started(timestamp=5.0, now=5.1) == []        # nothing to stop


def test_speech_after_the_reply_ended_is_no_barge_in_and_finals_can_stand_in_for_vad():
    taker = TurnTaker(EchoAgent(), fake_voice)
    taker.on_final(Final("hi", 0.0, 1.0), now=1.0)                      # "Hello! I am ..." reply
    end = taker.playback.started_at + taker.playback.duration
    assert taker.on_speech_started(timestamp=end + 0.1, now=end + 0.2) == []
    assert not taker.turns[-1].interrupted
    # vad_events off: a final that started during the reply stops it too
    taker.on_final(Final("x y z w", 10.0, 1.0), now=11.0)
    actions = taker.on_final(Final("again", 11.2, 0.5), now=11.8)
    assert isinstance(actions[0], StopSpeaking) and taker.turns[-2].barge_in_at == 11.2


def test_utterance_end_closes_a_turn_and_the_agent_hook_sees_the_history():
    seen = []

    def llm(text, history):
        seen.append((text, [t.role for t in history]))
        return ""                                   # an agent may stay silent

    taker = TurnTaker(FunctionAgent(llm), fake_voice, barge_in=False)
    taker.on_final(Final("no endpoint yet", 0.0, 1.0, speech_final=False), now=1.2)
    assert taker.on_utterance_end(now=2.0) == [] and taker.state == "listening"
    assert seen == [("no endpoint yet", ["user"])]


def test_espeak_gives_speech():
    samples, rate = espeak("Hello there.")
    assert rate > 8000 and 0.3 < len(samples) / rate < 3 and np.abs(samples).max() > 1000


def test_scripted_call_turns_and_barge_in(server, tmp_path):
    out = tmp_path / "turns.json"
    record = tmp_path / "conversation.wav"
    result = subprocess.run(
        [sys.executable, "-m", "demos.voice_agent", "--url", server.http_url, "--json", str(out),
         "--record", str(record)], cwd=REPO, text=True, capture_output=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=timeout(180))
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout)
    data = json.loads(out.read_text())
    turns, starts = data["turns"], data["script"]["utterance_starts"]
    assert [t["role"] for t in turns] == ["user", "agent", "user", "agent"]
    user1, agent1, user2, agent2 = turns
    for turn, clip in ((user1, SCRIPT[0]), (user2, SCRIPT[1])):
        assert error_rate(item(clip).references(), turn["text"]) < 0.15, turn
    assert agent1["text"] == f"You said: {user1['text']}"
    # The reply's length is the synthesized audio's sample count.
    samples, rate = espeak(agent1["text"])
    assert agent1["speech_s"] == pytest.approx(len(samples) / rate, abs=1e-3)
    # The caller's second utterance started while the agent spoke, and stopped it.
    assert agent1["start"] < starts[1] < agent1["start"] + agent1["speech_s"]
    assert agent1["interrupted"] and abs(agent1["barge_in_at"] - starts[1]) < 0.5
    assert data["script"]["barge_in_after"] <= agent1["played_s"] < agent1["speech_s"]
    assert agent1["end"] == pytest.approx(agent1["start"] + agent1["played_s"], abs=1e-3)
    # The second reply played to its end.
    assert not agent2["interrupted"] and agent2["played_s"] == agent2["speech_s"]
    assert agent2["start"] >= user2["end"]
    assert "barge-in" in result.stdout and "turns: user → agent (interrupted) → user → agent" in result.stderr
    assert record.stat().st_size > 16000 * 4 * 10                       # stereo, > 10 s


def test_microphone_caller_through_a_virtual_source(server, pulse_env, tmp_path):
    """`--mic`: the real PortAudio capture path (a PulseAudio null sink's monitor as the mic)."""
    clip = item("en_ls_1089-134691-0000")                # "He could wait no longer", 2 s
    out = tmp_path / "turns.json"
    with capturing(["demos.voice_agent", "--mic", "--duration", "14", "--url", server.http_url,
                    "--json", str(out)], pulse_env) as agent:
        play(clip.audio, pulse_env, 5)
        stdout = agent.finish(60)
    assert agent.process.returncode == 0, agent.errors
    turns = json.loads(out.read_text())["turns"]
    assert [t["role"] for t in turns] == ["user", "agent"], stdout
    assert error_rate(clip.references(), turns[0]["text"]) < 0.15, turns
    assert turns[1]["text"] == f"You said: {turns[0]['text']}" and not turns[1]["interrupted"]
