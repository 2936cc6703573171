"""Turn-taking for a voice agent, driven by streamscribe's events (sans-I/O: no sockets, no clock).

Time is the stream's: seconds of user audio sent so far (`now`), the same clock as the
server's event timestamps. The agent's speech is a `Playback` on that clock whose position
is counted in samples of the synthesized audio, so "how much was played" is exact and
repeatable, whatever the wall clock does.

    LISTENING --user's final ends the turn--> reply = agent(text); speak(reply) --> SPEAKING
    SPEAKING  --playback reaches its last sample--> LISTENING        (turn completed)
    SPEAKING  --SpeechStarted (user talks over the agent)--> stop --> LISTENING (barge-in)

A user turn ends at a final with `speech_final` (endpointing) or `from_finalize`, or at
`UtteranceEnd`; finals before that are joined into one turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np

__all__ = ["Agent", "EchoAgent", "FunctionAgent", "Playback", "Speak", "StopSpeaking",
           "Turn", "TurnTaker"]


@dataclass(frozen=True)
class Turn:
    role: str                      # "user" | "agent"
    text: str
    start: float                   # stream seconds
    end: float
    interrupted: bool = False      # agent: stopped by a barge-in
    speech_s: float = 0.0          # agent: length of the synthesized reply
    played_s: float = 0.0          # agent: how much of it was played
    barge_in_at: float | None = None   # agent: when the user started talking over it

    def to_json(self) -> dict:
        data = {"role": self.role, "text": self.text, "start": round(self.start, 3),
                "end": round(self.end, 3)}
        if self.role == "agent":
            data.update(interrupted=self.interrupted, speech_s=round(self.speech_s, 3),
                        played_s=round(self.played_s, 3),
                        barge_in_at=None if self.barge_in_at is None else round(self.barge_in_at, 3))
        return data


class Agent(Protocol):
    """What answers the user. Plug any LLM here: `respond` gets the user's words and the turns so far."""

    def respond(self, text: str, history: Sequence[Turn]) -> str: ...


class EchoAgent:
    """A small rule-based agent: greets, thanks, says goodbye, otherwise repeats what it heard."""

    RULES = [
        (re.compile(r"\b(hello|hi|hey|good (morning|afternoon|evening))\b", re.I),
         "Hello! I am listening. Say something and I will repeat it."),
        (re.compile(r"\b(thanks|thank you)\b", re.I), "You are welcome."),
        (re.compile(r"\b(bye|goodbye)\b", re.I), "Goodbye, and thank you for calling."),
        (re.compile(r"\bwhat can you do\b", re.I),
         "I repeat what you say. Plug in a language model to do more."),
    ]

    def respond(self, text: str, history: Sequence[Turn]) -> str:
        for pattern, reply in self.RULES:
            if pattern.search(text):
                return reply
        return f"You said: {text.strip()}"


@dataclass
class FunctionAgent:
    """Any `fn(text, history) -> str` as an agent (e.g. a call to a local LLM server)."""

    fn: Callable[[str, Sequence[Turn]], str]

    def respond(self, text: str, history: Sequence[Turn]) -> str:
        return self.fn(text, history)


@dataclass
class Playback:
    """Agent speech placed on the stream clock; its position is counted in samples."""

    text: str
    samples: np.ndarray
    rate: int
    started_at: float

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate

    def played_samples(self, now: float) -> int:
        return max(0, min(len(self.samples), int(round((now - self.started_at) * self.rate))))

    def finished(self, now: float) -> bool:
        return self.played_samples(now) >= len(self.samples)


@dataclass(frozen=True)
class Speak:
    """Action: start playing `playback` (an audio output may play its samples)."""

    playback: Playback


@dataclass(frozen=True)
class StopSpeaking:
    """Action: stop the agent's audio now; `played_samples` of it were heard."""

    playback: Playback
    played_samples: int


@dataclass
class TurnTaker:
    agent: Agent
    synthesize: Callable[[str], tuple[np.ndarray, int]]
    barge_in: bool = True
    turns: list[Turn] = field(default_factory=list)
    playback: Playback | None = None
    _pending: list = field(default_factory=list)      # finals of the user's current turn

    @property
    def state(self) -> str:
        return "speaking" if self.playback is not None else "listening"

    # -- events ---------------------------------------------------------------------------

    def on_speech_started(self, timestamp: float, now: float) -> list:
        """The user started talking at `timestamp` (stream time); we learn it at `now`."""
        if self.playback is None or not self.barge_in:
            return []
        if timestamp >= self.playback.started_at + self.playback.duration:
            return self.tick(now)           # it began after the reply had finished
        return self._stop(now, barge_in_at=timestamp)

    def on_final(self, final, now: float) -> list:
        """A final transcript (`text`, `start`, `duration`, `speech_final`, `from_finalize`)."""
        actions = []
        if final.text.strip():
            if self.playback is not None and self.barge_in and final.start < (
                    self.playback.started_at + self.playback.duration):
                # talked over the agent and no SpeechStarted came first (vad_events off)
                actions += self._stop(now, barge_in_at=final.start)
            self._pending.append(final)
        if final.speech_final or final.from_finalize:
            actions += self._end_user_turn(now)
        return actions

    def on_utterance_end(self, now: float) -> list:
        return self._end_user_turn(now)

    def tick(self, now: float) -> list:
        """Advance the clock: a reply whose last sample was played completes its turn."""
        if self.playback is not None and self.playback.finished(now):
            p, self.playback = self.playback, None
            self.turns.append(Turn("agent", p.text, p.started_at, p.started_at + p.duration,
                                   speech_s=p.duration, played_s=p.duration))
        return []

    # -- internals ------------------------------------------------------------------------

    def _stop(self, now: float, barge_in_at: float) -> list:
        p, self.playback = self.playback, None
        played = p.played_samples(now)
        self.turns.append(Turn("agent", p.text, p.started_at, p.started_at + played / p.rate,
                               interrupted=True, speech_s=p.duration, played_s=played / p.rate,
                               barge_in_at=barge_in_at))
        return [StopSpeaking(p, played)]

    def _end_user_turn(self, now: float) -> list:
        if not self._pending:
            return []
        finals, self._pending = self._pending, []
        text = " ".join(f.text.strip() for f in finals)
        self.turns.append(Turn("user", text, finals[0].start,
                               finals[-1].start + finals[-1].duration))
        actions = self.tick(now)
        if self.playback is not None:      # still answering an earlier turn: that reply yields
            actions += self._stop(now, barge_in_at=finals[0].start)
        reply = self.agent.respond(text, tuple(self.turns))
        if not reply.strip():
            return actions
        samples, rate = self.synthesize(reply)
        self.playback = Playback(reply, samples, rate, started_at=now)
        return actions + [Speak(self.playback)]
