"""What a `StreamRun` measured: per-utterance latencies, lost finals, flicker and WER.

Transcript events are matched to the utterances placed in the stream by their audio
times: an event belongs to an utterance when its [start, end] overlaps the utterance's
speech (±`MARGIN_S`) by at least half of the shorter of the two. An event without usable
times is given to the last utterance whose speech had started being sent when it arrived.
A final that spans two utterances belongs to both.

Latencies are wall clock on the client: an event's arrival minus the moment the chunk
holding the relevant audio sample (speech start or end, from the corpus audio, not from
the server's VAD) was sent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from streaming.eval.scoring import corpus_error_rate, tokens

from .streams import RATE, Event, StreamRun, Utterance

MARGIN_S = 0.3


@dataclass
class UtteranceTiming:
    item_id: str
    final_latency_s: float | None        # end of speech -> last final covering it
    finalized_by_close: bool             # that final came only after the close message
    first_partial_s: float | None        # start of speech -> first transcript (partial or final)
    partials: int
    partial_intervals_s: list[float]

    @property
    def lost(self) -> bool:
        return self.final_latency_s is None


def _overlaps(event: Event, utterance: Utterance) -> bool:
    lo, hi = utterance.speech_start - MARGIN_S, utterance.speech_end + MARGIN_S
    overlap = min(event.end, hi) - max(event.start, lo)
    shorter = min(event.end - event.start, hi - lo)
    return overlap > 0 and overlap >= 0.5 * shorter


def owners(run: StreamRun, event: Event) -> list[int]:
    """Indexes of the utterances an event belongs to."""
    utterances = run.stream.utterances
    if event.end > event.start:
        found = [i for i, u in enumerate(utterances) if _overlaps(event, u)]
        if found:
            return found
    started = [i for i, u in enumerate(utterances)
               if (run.sent_time(u.speech_start) or float("inf")) <= event.at]
    return started[-1:]


def transcripts(run: StreamRun) -> list[Event]:
    return [e for e in run.events if e.kind in ("partial", "final") and e.text.strip()]


def utterance_timings(run: StreamRun) -> list[UtteranceTiming]:
    per: list[list[Event]] = [[] for _ in run.stream.utterances]
    for event in transcripts(run):
        for index in owners(run, event):
            per[index].append(event)
    out = []
    for utterance, events in zip(run.stream.utterances, per):
        finals = [e for e in events if e.kind == "final"]
        partials = [e for e in events if e.kind == "partial"]
        end_sent = run.sent_time(utterance.speech_end)
        start_sent = run.sent_time(utterance.speech_start)
        last_final = max((e.at for e in finals), default=None)
        out.append(UtteranceTiming(
            item_id=utterance.item_id,
            final_latency_s=(last_final - end_sent) if last_final and end_sent else None,
            finalized_by_close=bool(last_final and run.closed_at and last_final > run.closed_at),
            first_partial_s=(min(e.at for e in events) - start_sent) if events and start_sent
            else None,
            partials=len(partials),
            partial_intervals_s=[b.at - a.at for a, b in zip(partials, partials[1:])]))
    return out


@dataclass
class Flicker:
    """Counts over segments (the interims up to and including the final that closes them).

    `stable_*`: words a partial declared stable (`stable_words`) and whether any later
    message of the segment showed a different word there (each position counted once).
    `interim_*`: how many interims are not a prefix of their segment's final, and how many
    of their words differ from the final's word at the same position. Words are compared
    after normalization (case and punctuation ignored, see scoring.py).
    """

    stable_promised: int = 0
    stable_changed: int = 0
    interims: int = 0
    interims_not_prefix: int = 0
    interim_words: int = 0
    interim_words_changed: int = 0

    def add(self, other: "Flicker") -> "Flicker":
        return Flicker(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values())))

    def summary(self) -> dict:
        return {**asdict(self),
                "stable_change_rate": _ratio(self.stable_changed, self.stable_promised),
                "interim_not_prefix_rate": _ratio(self.interims_not_prefix, self.interims),
                "interim_word_change_rate": _ratio(self.interim_words_changed, self.interim_words)}


def flicker(run: StreamRun, language: str = "en") -> Flicker:
    out = Flicker()
    promised: list[str] = []
    changed: list[bool] = []
    interims: list[list[str]] = []
    for event in transcripts(run):
        words = tokens(event.text, language)
        for j, word in enumerate(promised):
            if not changed[j] and (j >= len(words) or words[j] != word):
                changed[j] = True
        if event.kind == "partial":
            interims.append(words)
            stable = min(event.stable_words or 0, len(words))
            if stable > len(promised):
                changed += [False] * (stable - len(promised))
                promised += words[len(promised):stable]
            continue
        # a final closes the segment
        out.stable_promised += len(promised)
        out.stable_changed += sum(changed)
        for interim in interims:
            out.interims += 1
            out.interims_not_prefix += interim != words[:len(interim)]
            out.interim_words += len(interim)
            out.interim_words_changed += sum(
                1 for j, w in enumerate(interim) if j >= len(words) or words[j] != w)
        promised, changed, interims = [], [], []
    out.stable_promised += len(promised)
    out.stable_changed += sum(changed)
    return out


def final_text(run: StreamRun, with_last_partial: bool = False) -> str:
    """The finals joined; with `with_last_partial`, plus the last partial if no final
    followed it (what a client shows when the server never finalizes)."""
    texts = [e for e in transcripts(run)]
    out = [e.text.strip() for e in texts if e.kind == "final"]
    if with_last_partial and texts and texts[-1].kind == "partial":
        out.append(texts[-1].text.strip())
    return " ".join(out)


def stream_error_rate(runs: list[StreamRun], with_last_partial: bool = False) -> float | None:
    """Pooled WER of the finals against the concatenated references of each stream."""
    pairs = [(" ".join(u.references[0] for u in run.stream.utterances),
              final_text(run, with_last_partial),
              run.stream.language if run.stream.language != "multi" else "en")
             for run in runs if run.stream.utterances]
    return corpus_error_rate(pairs) if pairs else None


def audio_seconds(run: StreamRun) -> float:
    """Seconds of audio the client sent (the stream, plus any silence it sent after)."""
    return run.sent[-1][0] / RATE if run.sent else 0.0


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def distribution(values: list[float]) -> dict:
    """n, p50, p95, max, mean of a list (None where empty)."""
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None, "mean": None}
    array = np.asarray(values, dtype=float)
    return {"n": len(values), "p50": float(np.percentile(array, 50)),
            "p95": float(np.percentile(array, 95)), "max": float(array.max()),
            "mean": float(array.mean())}


def summarize(runs: list[StreamRun]) -> dict:
    """Everything the streaming suites report about a set of runs of one configuration."""
    timings = [t for run in runs for t in utterance_timings(run)]
    flick = Flicker()
    for run in runs:
        flick = flick.add(flicker(run))
    finals = [t.final_latency_s for t in timings if not t.lost]
    return {
        "utterances": len(timings),
        "finals_lost": sum(t.lost for t in timings),
        "finalized_by_close": sum(t.finalized_by_close for t in timings),
        "final_latency_s": distribution(finals),
        "first_partial_s": distribution([t.first_partial_s for t in timings]),
        "partial_interval_s": distribution([d for t in timings for d in t.partial_intervals_s]),
        "partials_per_utterance": (sum(t.partials for t in timings) / len(timings)
                                   if timings else None),
        "flicker": flick.summary(),
        # the server's own figure (an extra field of ours), for comparison only
        "server_reported_final_latency_s": distribution(
            [e.raw["latency_ms"] / 1000 for run in runs for e in run.events
             if e.kind == "final" and isinstance(e.raw.get("latency_ms"), (int, float))]),
        "wer": stream_error_rate(runs),
        "wer_with_last_partial": stream_error_rate(runs, with_last_partial=True),
        "errors": [run.error for run in runs if run.error],
        "transcripts": [{"reference": " ".join(u.references[0] for u in run.stream.utterances),
                         "finals": final_text(run)} for run in runs],
        "per_utterance": [asdict(t) for t in timings],
    }
