"""Scores how likely a transcript is invented rather than heard.

Whisper, given noise or near-silence, tends to produce stock phrases ("Thank you.",
"Thanks for watching!") or loops. The signals: the model's own no-speech probability,
low average log-probability, a high compression ratio (repetition), and stock phrases
over little voiced audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model.transcriber import Transcript
from .agreement import word_key

STOCK_PHRASES = {
    "thank you", "thank you very much", "thanks for watching", "thank you for watching",
    "thanks for watching and see you next time", "you", "bye", "bye bye", "so", "okay",
    "please subscribe", "subtitles by the amaraorg community", "music", "applause",
}


@dataclass(frozen=True)
class Assessment:
    score: float               # 0 (surely heard) .. 1 (surely invented)
    flags: tuple[str, ...]
    likely: bool

    def as_dict(self, suppressed: str | None = None) -> dict[str, Any]:
        """The wire form (`hallucination` of a final); `suppressed`: the withheld text."""
        out = {"score": round(self.score, 3), "flags": list(self.flags), "likely": self.likely}
        if suppressed is not None:
            out["suppressed_text"] = suppressed
        return out


def assess(transcript: Transcript, voiced_ms: int) -> Assessment:
    """Judge whether `transcript` of audio with `voiced_ms` of speech was likely invented:
    no speech heard, a repetition loop, or a stock phrase ("Thank you.") on little speech.
    A transcript without segments never is."""
    if not transcript.segments:
        return Assessment(0.0, (), False)
    no_speech = max(s.no_speech_prob for s in transcript.segments)
    logprob = min(s.avg_logprob for s in transcript.segments)
    compression = max(s.compression_ratio for s in transcript.segments)
    flags = []
    if no_speech > 0.6 and logprob < -0.7:
        flags.append("no_speech")
    if compression > 2.4:
        flags.append("repetition")
    if logprob < -1.2:
        flags.append("low_confidence")
    phrase = " ".join(word_key(w) for w in transcript.text.split())
    if phrase in STOCK_PHRASES and (no_speech > 0.2 or voiced_ms < 600 or logprob < -0.6):
        flags.append("stock_phrase")
    score = min(1.0, max(no_speech, min(1.0, -logprob / 2.0)) + 0.3 * len(flags))
    likely = "no_speech" in flags or "repetition" in flags or "stock_phrase" in flags \
        or ("low_confidence" in flags and no_speech > 0.4)
    return Assessment(score, tuple(flags), likely)
