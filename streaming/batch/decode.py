"""Any audio or video file to 16 kHz mono int16, decoded incrementally with PyAV (FFmpeg).

`AudioFile` opens a container (a path or a seekable binary file object), checks what its
header claims about the duration, and `chunks()` yields about a second of resampled audio at a
time, so a four-hour file never sits in memory. Blocking: call it from a worker thread.

Errors are `AudioDecodeError` with a specific code (`empty_file`, `invalid_audio`,
`no_audio_stream`, `empty_audio`) or `AudioTooLong`, raised from the header when the container
states a duration, otherwise as soon as decoding passes the limit.

Headerless audio (Deepgram's pre-recorded `encoding` + `sample_rate`) opens with a `RawFormat`;
`channel=N` yields one channel instead of the mono mix (Deepgram's `multichannel`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator

import av
import numpy as np

from ..errors import AudioDecodeError, AudioTooLong
from ..model.transcriber import SAMPLE_RATE

log = logging.getLogger("streamscribe.decode")

CHUNK_SAMPLES = SAMPLE_RATE  # what chunks() yields at a time (the last one may be shorter)
# Corrupt packets are skipped as FFmpeg's command line does; this many in a row means the
# stream is garbage rather than damaged.
MAX_CONSECUTIVE_ERRORS = 50


# Headerless encodings and the FFmpeg demuxer that reads each.
RAW_DEMUXERS = {"linear16": "s16le", "mulaw": "mulaw", "alaw": "alaw"}


@dataclass(frozen=True)
class RawFormat:
    """Headerless audio: an encoding of RAW_DEMUXERS, its sample rate and channel count."""

    encoding: str
    sample_rate: int
    channels: int = 1

    def open_args(self) -> dict[str, Any]:
        layout = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels}c")
        return {"format": RAW_DEMUXERS[self.encoding],
                "options": {"sample_rate": str(self.sample_rate), "ch_layout": layout}}


@dataclass(frozen=True)
class AudioInfo:
    format: str                 # container, e.g. "mp3", "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str                  # audio codec, e.g. "aac"
    sample_rate: int            # of the source stream
    channels: int
    duration: float | None      # what the header claims, None if it says nothing


def _size(source: str | os.PathLike[str] | BinaryIO) -> int:
    if isinstance(source, (str, os.PathLike)):
        return os.path.getsize(source)
    position = source.tell()
    size = source.seek(0, os.SEEK_END)
    source.seek(position)
    return size


def _too_long(seconds: float, limit: float) -> AudioTooLong:
    return AudioTooLong(f"the audio is at least {seconds:.0f} s long; the limit is {limit:.0f} s "
                        f"({limit / 3600:g} h)", param="file")


def _reason(exc: Exception) -> str:
    """What went wrong in FFmpeg's words, without its errno and internal file name
    (str(exc) reads "[Errno 1094995529] Invalid data found ...: '<none>'")."""
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return str(exc.strerror).rstrip(".").lower()
    return "not a format this server reads"


class AudioFile:
    """One opened audio container. Use as a context manager; not thread-safe.

    `channel` selects one channel of the source (0-based; AudioDecodeError `invalid_channel`
    if the source has fewer); None mixes all channels down to mono.
    """

    def __init__(self, source: str | os.PathLike[str] | BinaryIO, *,
                 max_duration_s: float = float("inf"), raw: RawFormat | None = None,
                 channel: int | None = None) -> None:
        if _size(source) == 0:
            raise AudioDecodeError("the file is empty (0 bytes)", code="empty_file", param="file")
        self.max_duration_s = max_duration_s
        self.channel = channel
        try:
            self._container = av.open(source, mode="r", **(raw.open_args() if raw else {}))
        except (av.error.FFmpegError, ValueError, UnicodeDecodeError) as exc:
            raise AudioDecodeError(f"the file could not be read as audio: {_reason(exc)}",
                                   code="invalid_audio", param="file") from exc
        try:
            if not self._container.streams.audio:
                raise AudioDecodeError("the file has no audio track", code="no_audio_stream",
                                       param="file")
            self._stream = self._container.streams.audio[0]
            self.info = AudioInfo(
                format=self._container.format.name, codec=self._stream.codec_context.name,
                sample_rate=self._stream.codec_context.sample_rate or 0,
                channels=self._stream.codec_context.channels or 0,
                duration=self._header_duration())
            if self.info.duration is not None and self.info.duration > max_duration_s:
                raise _too_long(self.info.duration, max_duration_s)
            if channel is not None and not 0 <= channel < self.info.channels:
                raise AudioDecodeError(f"channel {channel} asked for, but the audio has "
                                       f"{self.info.channels}", code="invalid_channel",
                                       param="file")
        except BaseException:
            self._container.close()
            raise
        self.samples_decoded = 0  # at 16 kHz, so far

    def _header_duration(self) -> float | None:
        # The stream's own duration is the more specific claim; the container's (in
        # microseconds) covers formats that only state it there.
        stream = self._stream
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if self._container.duration is not None:
            return float(self._container.duration / av.time_base)
        return None

    @property
    def seconds_decoded(self) -> float:
        return self.samples_decoded / SAMPLE_RATE

    def _frames(self) -> Iterator[av.AudioFrame]:
        errors = 0
        for packet in self._container.demux(self._stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                errors += 1
                log.debug("skipping a corrupt packet: %s", exc)
                if errors >= MAX_CONSECUTIVE_ERRORS:
                    raise AudioDecodeError(f"the audio stream is corrupt: {_reason(exc)}",
                                           code="invalid_audio", param="file") from exc
                continue
            errors = 0
            yield from frames

    def chunks(self) -> Iterator[np.ndarray]:
        """16 kHz mono int16 arrays of CHUNK_SAMPLES, in order; raises AudioTooLong early."""
        # One channel: resample keeping the source layout, then take that column.
        resampler = av.AudioResampler(format="s16", rate=SAMPLE_RATE,
                                      layout="mono" if self.channel is None else self._stream.layout)
        limit = int(self.max_duration_s * SAMPLE_RATE) if self.max_duration_s != float("inf") \
            else None
        pending: list[np.ndarray] = []
        pending_samples = 0
        try:
            frames = self._frames()
            while True:
                frame = next(frames, None)
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    if self.channel is not None:
                        samples = samples.reshape(-1, self.info.channels)[:, self.channel]
                    self.samples_decoded += len(samples)
                    if limit is not None and self.samples_decoded > limit:
                        raise _too_long(self.seconds_decoded, self.max_duration_s)
                    pending.append(samples)
                    pending_samples += len(samples)
                    if pending_samples >= CHUNK_SAMPLES:
                        joined = np.concatenate(pending)
                        for start in range(0, len(joined) - CHUNK_SAMPLES + 1, CHUNK_SAMPLES):
                            yield joined[start:start + CHUNK_SAMPLES]
                        rest = joined[len(joined) - len(joined) % CHUNK_SAMPLES:]
                        pending, pending_samples = ([rest], len(rest)) if len(rest) else ([], 0)
                if frame is None:
                    break
        except av.error.FFmpegError as exc:
            raise AudioDecodeError(f"the audio could not be decoded: {_reason(exc)}",
                                   code="invalid_audio", param="file") from exc
        if pending_samples:
            yield np.concatenate(pending)
        if self.samples_decoded == 0:
            raise AudioDecodeError("the file contains no decodable audio", code="empty_audio",
                                   param="file")

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "AudioFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decode_all(source: str | os.PathLike[str] | BinaryIO, *,
               max_duration_s: float = float("inf")) -> np.ndarray:
    """A whole (short) file as 16 kHz mono int16: for tests, benchmarks and the CLI's short files."""
    with AudioFile(source, max_duration_s=max_duration_s) as audio:
        parts = list(audio.chunks())
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)
