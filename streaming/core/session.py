"""Sans-I/O state of one streaming connection: audio in; one ordered list of outputs out.

The asyncio shell (`api/live_stream.py`) feeds bytes (`feed`, `finalize`, `close`), reads
`outputs()` after each input and acts on every item in order — start a job, cancel a job,
send an event, note that an utterance ended — and hands job results back with `job_done`
or `job_dropped`. The session decides what to transcribe and when (speculative finals when
silence begins, partials at a steady cadence), keeps finals in order per channel,
stabilizes partials, and turns transcripts into typed events.
Time is counted in samples; there is no clock here.
"""

from __future__ import annotations

import itertools
from difflib import SequenceMatcher
from dataclasses import dataclass, field, replace

import numpy as np

from ..audio import PcmDecoder, Resampler, to_float32
from ..config import StreamConfig, VadConfig
from ..model.transcriber import SAMPLE_RATE, TranscribeOptions, Transcript
from .agreement import LocalAgreement, word_key
from .history import AudioHistory
from .events import (
    Event,
    SpeechEnded,
    SpeechStarted,
    StreamWarning,
    Transcription,
    UtteranceEnd,
    WordTiming,
)
from .hallucination import assess
from .segmenter import (
    Discarded,
    Ended,
    Resumed,
    SegmentEvent,
    Segmenter,
    Speculate,
    Started,
    Utterance,
)

MIN_PARTIAL_SAMPLES = SAMPLE_RATE // 2
PARTIAL_SILENCE_MS = 60
# A stream that asked for detection (language=None) pins the language of the first
# transcript, partial or final, that heard this much speech and is this sure of it; until
# then every job detects again. Pinned, English partials take the fast partial model.
PIN_MIN_VOICED_MS = 1000
PIN_MIN_PROBABILITY = 0.8
# How far past the start of a final's own audio a word of the left context may be heard (the
# words' times are that loose at the cut).
CUT_SLACK_S = 0.5


@dataclass(frozen=True)
class StreamOptions:
    """What a client asked for; validated by the protocol codec that built it."""

    encoding: str = "linear16"
    sample_rate: int = SAMPLE_RATE
    channels: int = 1
    multichannel: bool = False
    interim_results: bool = False          # as on the wire (Deepgram's default)
    endpointing_ms: int | None = None      # None: server default; 0: endpointing off
    utterance_end_ms: int | None = None
    vad_events: bool = False
    speech_ended_events: bool = False      # SpeechEnded when an utterance ends or is dropped
    language: str | None = "en"            # None: detect (Deepgram "multi")
    model: str | None = None
    prompt: str | None = None              # Whisper initial prompt (vocabulary, spelling)


@dataclass(frozen=True)
class Job:
    id: int
    channel: int
    utterance: int
    kind: str                  # "partial" | "final"
    audio: np.ndarray          # float32, 16 kHz
    offset: float              # stream time of audio[0], seconds
    options: TranscribeOptions
    voiced_ms: int = 0         # speech the segmenter heard in the utterance
    context: float = 0.0       # seconds of earlier audio before the utterance in `audio`


@dataclass(frozen=True)
class StartJob:
    """Run `job` on the model, then call `job_done` (or `job_dropped` if it was refused)."""

    job: Job


@dataclass(frozen=True)
class CancelJob:
    """A job handed out earlier is no longer wanted: its result would be ignored."""

    job_id: int


@dataclass(frozen=True)
class UtteranceEnded:
    """The segmenter ended this utterance; its final is now awaited (the shell starts the
    final's latency clock here)."""

    channel: int
    utterance: int


Output = StartJob | CancelJob | UtteranceEnded | Event


@dataclass
class _FinalSlot:
    utterance: Utterance | None    # None: an empty final answering a Finalize with no speech
    job_id: int | None
    reason: str
    event: Transcription | None = None


@dataclass
class _Channel:
    segmenter: Segmenter
    resampler: Resampler
    history: AudioHistory
    agreement: LocalAgreement = field(default_factory=LocalAgreement)
    partial_job: int | None = None
    partial_audio: int = 0
    speculative: tuple[Utterance, int] | None = None
    finals: list[_FinalSlot] = field(default_factory=list)
    last_word_end: float | None = None
    last_final: int = -1                                   # utterance of the last final sent
    onsets: dict[int, float] = field(default_factory=dict)  # utterance -> speech onset (s)
    spoken: list[tuple[int, int]] = field(default_factory=list)  # recent utterances' spans
    said: list[tuple[int, list[str]]] = field(default_factory=list)  # recent finals' words


class StreamSession:
    """The per-connection state machine. Inputs: `feed`, `finalize`, `close` (from the
    client), `job_done`, `job_dropped` (from the model). Output: `outputs()`, one list in
    the order things happened, so a caller cannot act on them out of order; a job cancelled
    before `outputs()` handed it out never appears at all."""

    def __init__(self, options: StreamOptions, vad: VadConfig = VadConfig(),
                 stream: StreamConfig = StreamConfig(), beam_size: int = 1) -> None:
        self.options = options
        self._speech_final = options.endpointing_ms != 0
        if options.endpointing_ms:
            vad = replace(vad, endpointing_ms=options.endpointing_ms,
                          speculative_ms=min(vad.speculative_ms, options.endpointing_ms))
        self._decoder = PcmDecoder(options.encoding, options.channels)
        count = options.channels if options.multichannel else 1
        self._context = int(stream.left_context_s * SAMPLE_RATE)
        # Enough for a short utterance, its endpointing silence and the context before it.
        history = 2 * self._context + SAMPLE_RATE * (vad.endpointing_ms // 1000 + 2)
        self._channels = [_Channel(Segmenter(vad), Resampler(options.sample_rate),
                                   AudioHistory(history if self._context else 0))
                          for _ in range(count)]
        self._partial_interval = SAMPLE_RATE * stream.partial_interval_ms // 1000
        self._beam_size = beam_size
        self.language = options.language      # None until detected and pinned
        self._ids = itertools.count()
        self._inflight: dict[int, Job] = {}
        self._results: dict[int, tuple[Transcript, float]] = {}   # job -> (result, context)
        self._outputs: list[Output] = []
        self._unsent: dict[int, StartJob] = {}    # StartJobs not yet handed out, by job id
        self._frames_in = 0
        self.closed = False

    # -- inputs from the shell -------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Client audio, in the encoding of `options`; any length (a partial sample or
        frame is kept for the next call). May start, cancel and finish utterances."""
        frames = self._decoder.feed(data)
        self._frames_in += len(frames)
        if len(frames) == 0:
            return
        if len(self._channels) == 1 and frames.shape[1] > 1:
            per_channel = [frames.mean(axis=1).astype(np.int16)]
        else:
            per_channel = [frames[:, i] for i in range(frames.shape[1])]
        for index, samples in enumerate(per_channel):
            state = self._channels[index]
            self._segment(index, state.resampler.feed(samples))
            self._maybe_partial(index)
            self._maybe_utterance_end(index)

    def finalize(self) -> None:
        """Client Finalize: end every utterance in progress now; each channel gets a final
        marked `from_finalize` (an empty one if no speech was in progress)."""
        for index, state in enumerate(self._channels):
            events = state.segmenter.flush()
            if not any(isinstance(e, Ended) for e in events):
                state.finals.append(_FinalSlot(None, None, "flush"))
            for event in events:
                self._on_segment(index, event)
            self._emit_ready(index)

    def close(self) -> None:
        """Client CloseStream or end of input: flush resamplers and segmenters, so every
        utterance in progress gets a final. No input but `job_done`/`job_dropped` after this;
        `done` turns true once the last final has been output."""
        for index, state in enumerate(self._channels):
            self._segment(index, state.resampler.flush())
            for event in state.segmenter.flush("close"):
                self._on_segment(index, event)
            self._emit_ready(index)
        self.closed = True

    def job_done(self, job_id: int, transcript: Transcript | None,
                 error: BaseException | None = None) -> None:
        """The result of a job from a `StartJob` (`error` set and `transcript` None if it
        failed). A failed final still yields its final (empty) after a `StreamWarning`;
        results of cancelled jobs and unknown ids are ignored."""
        job = self._inflight.pop(job_id, None)
        if job is None:
            return  # cancelled meanwhile
        state = self._channels[job.channel]
        if job.kind == "partial":
            state.partial_job = None
            if transcript is not None:
                self._on_partial(job, transcript)
            return
        if error is not None or transcript is None:
            self._outputs.append(StreamWarning(
                "transcription_failed",
                f"channel {job.channel}: audio {job.offset + job.context:.2f}s–"
                f"{job.offset + len(job.audio) / SAMPLE_RATE:.2f}s could not be transcribed: "
                f"{error}"))
            transcript = Transcript("", self.language or "", 0.0, 0.0, ())
        self._results[job_id] = (transcript, job.context)
        self._emit_ready(job.channel)

    def job_dropped(self, job_id: int) -> None:
        """The model refused a job (only partials may be refused, under overload); the
        next partial is asked for when enough new audio has arrived."""
        job = self._inflight.pop(job_id, None)
        if job is not None and job.kind == "partial":
            self._channels[job.channel].partial_job = None

    # -- outputs to the shell --------------------------------------------------------------

    def outputs(self) -> list[Output]:
        """Everything that happened since the last call, in order: `StartJob`, `CancelJob`
        (only for jobs already handed out), `UtteranceEnded`, and events for the client.
        Finals of a channel come in utterance order. Call after every input."""
        outputs, self._outputs = self._outputs, []
        self._unsent.clear()
        return outputs

    @property
    def pending_finals(self) -> int:
        """Finals owed to the client (utterances ended, final not yet output)."""
        return sum(len(s.finals) for s in self._channels)

    @property
    def done(self) -> bool:
        """Closed, and every final delivered."""
        return self.closed and self.pending_finals == 0

    @property
    def duration(self) -> float:
        """Seconds of client audio fed so far."""
        return self._frames_in / self.options.sample_rate

    @property
    def channel_count(self) -> int:
        """Channels transcribed separately (1 unless `multichannel`)."""
        return len(self._channels)

    # -- segmentation ---------------------------------------------------------------------

    def _segment(self, index: int, samples: np.ndarray) -> None:
        state = self._channels[index]
        # A second at a time, so that the history still holds the context of an utterance
        # when it ends, however much audio one call brings.
        for at in range(0, len(samples), SAMPLE_RATE):
            piece = samples[at:at + SAMPLE_RATE]
            if self._context:
                state.history.append(piece)
            for event in state.segmenter.feed(piece):
                self._on_segment(index, event)

    def _on_segment(self, index: int, event: SegmentEvent) -> None:
        state = self._channels[index]
        if isinstance(event, Started):
            state.onsets[event.index] = event.onset / SAMPLE_RATE
            state.agreement = LocalAgreement()
            state.partial_audio = 0
            if self.options.vad_events:
                self._outputs.append(SpeechStarted(index, event.onset / SAMPLE_RATE,
                                                  event.index))
        elif isinstance(event, Speculate):
            state.speculative = (event.utterance, self._new_job(index, event.utterance, "final"))
        elif isinstance(event, Resumed):
            self._drop_speculative(state)
        elif isinstance(event, Ended):
            utterance = event.utterance
            spec = state.speculative
            if spec and spec[0].index == utterance.index and len(spec[0].audio) == len(utterance.audio):
                job_id = spec[1]
                state.speculative = None
            else:
                self._drop_speculative(state)
                job_id = self._new_job(index, utterance, "final")
            self._cancel_partial(state)
            state.finals.append(_FinalSlot(utterance, job_id, event.reason))
            state.spoken = [*state.spoken[-8:], (utterance.start, utterance.end)]
            self._outputs.append(UtteranceEnded(index, utterance.index))
            if self.options.speech_ended_events:
                self._outputs.append(SpeechEnded(index, utterance.end / SAMPLE_RATE,
                                                utterance.index))
            # A speculative final may have finished before the endpoint confirmed it.
            self._emit_ready(index)
        elif isinstance(event, Discarded):
            self._drop_speculative(state)
            self._cancel_partial(state)
            if self.options.speech_ended_events:
                self._outputs.append(SpeechEnded(
                    index, state.segmenter.position / SAMPLE_RATE, event.index, kept=False))

    def _drop_speculative(self, state: _Channel) -> None:
        if state.speculative is not None:
            self._cancel(state.speculative[1])
            state.speculative = None

    def _cancel_partial(self, state: _Channel) -> None:
        if state.partial_job is not None:
            self._cancel(state.partial_job)
            state.partial_job = None

    def _cancel(self, job_id: int) -> None:
        if self._inflight.pop(job_id, None) is not None:
            unsent = self._unsent.pop(job_id, None)
            if unsent is not None:
                # Never handed out: nothing to run, nothing to cancel.
                self._outputs = [o for o in self._outputs if o is not unsent]
            else:
                self._outputs.append(CancelJob(job_id))
        self._results.pop(job_id, None)

    def _new_job(self, index: int, utterance: Utterance, kind: str) -> int:
        options = TranscribeOptions(language=self.language, beam_size=self._beam_size,
                                    word_timestamps=(kind == "final"), temperature=0.0,
                                    prompt=self.options.prompt, draft=(kind == "partial"))
        context = self._left_context(self._channels[index], utterance) if kind == "final" \
            else np.zeros(0, np.int16)
        job = Job(next(self._ids), index, utterance.index, kind,
                  to_float32(np.concatenate([context, utterance.audio])),
                  (utterance.start - len(context)) / SAMPLE_RATE, options, utterance.voiced_ms,
                  len(context) / SAMPLE_RATE)
        self._inflight[job.id] = job
        start = StartJob(job)
        self._unsent[job.id] = start
        self._outputs.append(start)
        return job.id

    def _left_context(self, state: _Channel, utterance: Utterance) -> np.ndarray:
        """The audio before a short utterance, when speech went on there: a few words cut off
        from their sentence read badly alone (tiny endpointing cuts at every breath), and
        the model reads them better after the speech that led up to them."""
        if len(utterance.audio) >= self._context:
            return np.zeros(0, np.int16)
        # From the start of the earliest utterance in reach: a context that begins inside a
        # word gets that word misheard and misplaced, right where the cut is decided.
        starts = [start for start, end in state.spoken
                  if start >= utterance.start - self._context and end <= utterance.start]
        if not starts:
            return np.zeros(0, np.int16)
        return state.history.between(min(starts), utterance.start)

    # -- partials -------------------------------------------------------------------------

    def _maybe_partial(self, index: int) -> None:
        state = self._channels[index]
        # No partial over trailing silence: it would show nothing new, and would hold the
        # worker just when the final is about to be transcribed.
        if not self.options.interim_results or state.partial_job is not None \
                or state.speculative is not None \
                or state.segmenter.trailing_silence_ms >= PARTIAL_SILENCE_MS:
            return
        current = state.segmenter.current()
        if current is None or len(current.audio) < MIN_PARTIAL_SAMPLES \
                or len(current.audio) - state.partial_audio < self._partial_interval:
            return
        # While the language is unknown a partial runs on the main model and detects it; one
        # on too little speech to pin the language would cost as much and settle nothing.
        if self.language is None and current.voiced_ms < PIN_MIN_VOICED_MS:
            return
        state.partial_audio = len(current.audio)
        state.partial_job = self._new_job(index, current, "partial")

    def _on_partial(self, job: Job, transcript: Transcript) -> None:
        state = self._channels[job.channel]
        if not transcript.text or assess(transcript, job.voiced_ms).likely:
            return  # nothing heard yet, or a stock phrase on a breath: show nothing
        self._maybe_pin_language(transcript, job.voiced_ms)
        current = state.segmenter.current()
        if current is None or current.index != job.utterance:
            return  # the utterance ended meanwhile; its final supersedes this
        duration = len(job.audio) / SAMPLE_RATE
        shown = state.agreement.update(_spread_words(transcript.text, job.offset, duration))
        self._outputs.append(Transcription(
            channel=job.channel, start=job.offset, duration=duration,
            text=" ".join(w.punctuated_word for w in shown), words=tuple(shown),
            is_final=False, confidence=_confidence(transcript), language=transcript.language,
            stable_words=len(state.agreement.confirmed), utterance=job.utterance))

    # -- finals ---------------------------------------------------------------------------

    def _emit_ready(self, index: int) -> None:
        """Emit finals of this channel in utterance order, as far as results allow."""
        state = self._channels[index]
        while state.finals:
            slot = state.finals[0]
            if slot.job_id is not None and slot.job_id not in self._results:
                return
            result = self._results.pop(slot.job_id) if slot.job_id is not None else None
            state.finals.pop(0)
            event = self._final_event(index, slot, result)
            if event.words:
                state.last_word_end = event.words[-1].end
            if slot.utterance is not None:
                state.last_final = slot.utterance.index
                state.said = [*state.said[-8:], (slot.utterance.start,
                                                 [w.word for w in event.words])]
                for old in [k for k in state.onsets if k <= state.last_final]:
                    del state.onsets[old]
            self._outputs.append(event)
        self._maybe_utterance_end(index)

    def _final_event(self, index: int, slot: _FinalSlot,
                     result: tuple[Transcript, float] | None) -> Transcription:
        flush = slot.reason == "flush"
        speech_final = self._speech_final and slot.reason == "endpoint"
        if slot.utterance is None or result is None:
            at = self._channels[index].segmenter.position / SAMPLE_RATE
            return Transcription(index, at, 0.0, "", (), True, speech_final, flush,
                                 language=self.language)
        utterance = slot.utterance
        transcript, context = result
        if context:
            since = utterance.start - round(context * SAMPLE_RATE)
            said = [w for start, words in self._channels[index].said if start >= since
                    for w in words]
            transcript = _own_words(transcript, context, said)
        start = utterance.start / SAMPLE_RATE
        duration = len(utterance.audio) / SAMPLE_RATE
        verdict = assess(transcript, utterance.voiced_ms)
        if not verdict.likely:
            self._maybe_pin_language(transcript, utterance.voiced_ms)
        words = tuple(_word_timings(transcript, start, start + duration))
        text = transcript.text
        hallucination = verdict.as_dict()
        if verdict.likely and text:
            hallucination = verdict.as_dict(suppressed=text)
            words, text = (), ""
        return Transcription(
            channel=index, start=start, duration=duration, text=text, words=words,
            is_final=True, speech_final=speech_final, from_finalize=flush,
            confidence=_confidence(transcript) if words else 0.0,
            language=transcript.language, hallucination=hallucination,
            utterance=utterance.index)

    def _maybe_pin_language(self, transcript: Transcript, voiced_ms: int) -> None:
        """Detect once per stream: later jobs name the language instead of detecting it."""
        if self.language is None and transcript.language and voiced_ms >= PIN_MIN_VOICED_MS \
                and transcript.language_probability >= PIN_MIN_PROBABILITY:
            self.language = transcript.language

    def _maybe_utterance_end(self, index: int) -> None:
        """UtteranceEnd once `utterance_end_ms` of audio passed with no word after the last
        final's words: measured up to the next speech onset, or up to now if none began."""
        gap_ms = self.options.utterance_end_ms
        state = self._channels[index]
        if not gap_ms or state.last_word_end is None:
            return
        next_onset = state.onsets.get(state.last_final + 1)
        if next_onset is None and state.segmenter.speaking:
            return
        until = next_onset if next_onset is not None else state.segmenter.position / SAMPLE_RATE
        if (until - state.last_word_end) * 1000 >= gap_ms:
            self._outputs.append(UtteranceEnd(index, state.last_word_end))
            state.last_word_end = None


def _word_timings(transcript: Transcript, start: float, end: float) -> list[WordTiming]:
    out = []
    for word in transcript.words:
        if not word.word:
            continue
        w_start = min(max(start + word.start, start), end)
        w_end = min(max(start + word.end, w_start), end)
        out.append(WordTiming(word_key(word.word), word.word, round(w_start, 3),
                              round(w_end, 3), round(word.probability, 4)))
    return out


def _own_words(transcript: Transcript, context: float, said: list[str]) -> Transcript:
    """The words of `transcript` that belong to the utterance after its `context` seconds of
    earlier audio, with times from the utterance's start.

    `said` is what the finals of that earlier audio said. Word times are too loose to cut by
    alone (a word misplaced by 0.1 s at the cut is lost or doubled), so the earlier finals'
    words are aligned with the start of this transcript: the cut follows the last word both
    agree on, and then up to as many words as the earlier finals said after it that lie
    before the cut in time. Without an agreement a word belongs to the side of the cut its
    middle is on."""
    heard = [w for s in transcript.segments for w in s.words]
    near = [w for w in heard if w.start + w.end < 2 * (context + CUT_SLACK_S)]
    cut = sum(1 for w in heard if w.start + w.end < 2 * context)
    if said and near:
        matcher = SequenceMatcher(None, [word_key(w) for w in said],
                                  [word_key(w.word) for w in near], autojunk=False)
        blocks = [b for b in matcher.get_matching_blocks() if b.size]
        if blocks:
            last = blocks[-1]
            cut, unmatched = last.b + last.size, len(said) - last.a - last.size
            # Words said after the last agreed one, misheard here or there: as many as fall
            # before the cut in time.
            while unmatched and cut < len(near) and near[cut].start + near[cut].end < 2 * context:
                cut, unmatched = cut + 1, unmatched - 1
    segments = []
    first = 0                                   # index of the segment's first word in `heard`
    for segment in transcript.shifted(-context).segments:
        words = segment.words[max(cut - first, 0):]
        first += len(segment.words)
        if words:
            segments.append(replace(segment, start=max(segment.start, 0.0), words=words,
                                    text=" " + " ".join(w.word for w in words)))
    text = " ".join(w.word for s in segments for w in s.words)
    return replace(transcript, text=text, segments=tuple(segments),
                   duration=max(transcript.duration - context, 0.0))


def _spread_words(text: str, offset: float, duration: float) -> list[WordTiming]:
    """Partials are decoded without word alignment (it costs a second pass): spread the
    words evenly over the audio so clients still get a `words` list with plausible times."""
    tokens = text.split()
    if not tokens:
        return []
    step = duration / len(tokens)
    return [WordTiming(word_key(t), t, round(offset + i * step, 3),
                       round(offset + (i + 1) * step, 3), 0.0) for i, t in enumerate(tokens)]


def _confidence(transcript: Transcript) -> float:
    words = transcript.words
    if words:
        return round(float(np.mean([w.probability for w in words])), 4)
    if transcript.segments:
        return round(float(np.exp(np.mean([s.avg_logprob for s in transcript.segments]))), 4)
    return 0.0
