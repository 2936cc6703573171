"""A time-ordered, per-speaker transcript of a call, built from the finals of each speaker's stream.

Each speaker (a Twilio track, a channel of a multichannel stream) has its own stream whose finals
come in order; across speakers they come in any order, so turns are inserted by start time.
Used by the Twilio endpoint and the call-center demo. Pure: no I/O, no clock.

`add` takes any final with the fields of `streaming.core.events.Transcription` (`is_final`, `text`,
`start`, `duration`, `channel`, `language`, `confidence`, `words` with `word`,
`punctuated_word`, `start`, `end`, `confidence`): the server's events and the client
library's `Transcript` both fit.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from .events import Transcription

__all__ = ["Conversation", "Turn"]


@dataclass(frozen=True)
class Turn:
    speaker: str
    start: float
    end: float
    text: str
    channel: int = 0
    language: str | None = None
    confidence: float = 0.0
    words: tuple[dict[str, Any], ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        """The turn as GET /v1/twilio/calls/{sid} shows it (times rounded to ms)."""
        return {"speaker": self.speaker, "channel": self.channel, "start": round(self.start, 3),
                "end": round(self.end, 3), "text": self.text, "language": self.language,
                "confidence": round(self.confidence, 3), "words": list(self.words)}


def _clock(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


class Conversation:
    """Turns of every speaker, ordered by start time (ties: speaker order, then arrival)."""

    def __init__(self, speakers: tuple[str, ...] = ()) -> None:
        self.speakers: list[str] = list(speakers)
        self._turns: list[Turn] = []
        self._keys: list[tuple[Any, ...]] = []
        self._arrivals = 0

    def add(self, speaker: str, final: Transcription, *, offset: float = 0.0) -> Turn | None:
        """Record a final of `speaker`'s stream; None for an empty one (nothing said)."""
        text = final.text.strip()
        if not final.is_final or not text:
            return None
        words = tuple({"word": w.word, "punctuated_word": w.punctuated_word,
                       "start": round(w.start + offset, 3), "end": round(w.end + offset, 3),
                       "confidence": round(w.confidence, 3)} for w in final.words)
        return self.insert(Turn(speaker=speaker, start=final.start + offset,
                                end=final.start + final.duration + offset, text=text,
                                channel=final.channel, language=final.language,
                                confidence=final.confidence, words=words))

    def insert(self, turn: Turn) -> Turn:
        """Place a turn by its start time."""
        speaker = turn.speaker
        if speaker not in self.speakers:
            self.speakers.append(speaker)
        key = (round(turn.start, 3), self.speakers.index(speaker), self._arrivals)
        self._arrivals += 1
        index = bisect.bisect(self._keys, key)
        self._keys.insert(index, key)
        self._turns.insert(index, turn)
        return turn

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Conversation:
        """The inverse of `to_json` (e.g. a call fetched from GET /v1/twilio/calls/{sid})."""
        conversation = cls(tuple(data.get("speakers", ())))
        for t in data.get("turns", ()):
            conversation.insert(Turn(speaker=t["speaker"], start=t["start"], end=t["end"],
                                     text=t["text"], channel=t.get("channel", 0),
                                     language=t.get("language"),
                                     confidence=t.get("confidence", 0.0),
                                     words=tuple(t.get("words", ()))))
        return conversation

    @property
    def turns(self) -> list[Turn]:
        """Every turn, ordered by start time (a copy)."""
        return list(self._turns)

    def text_of(self, speaker: str) -> str:
        """Everything `speaker` said, turn after turn."""
        return " ".join(t.text for t in self._turns if t.speaker == speaker)

    def to_json(self) -> dict[str, Any]:
        """Speakers and turns; `from_json` reads it back."""
        return {"speakers": list(self.speakers), "turns": [t.to_json() for t in self._turns]}

    def to_text(self, labels: dict[str, str] | None = None) -> str:
        """A readable script: `[mm:ss] Speaker: text`, one line per turn."""
        labels = labels or {}
        width = max((len(labels.get(s, s)) for s in self.speakers), default=0)
        return "".join(f"[{_clock(t.start)}] {labels.get(t.speaker, t.speaker):<{width}}  {t.text}\n"
                       for t in self._turns)
