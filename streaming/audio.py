"""Audio codecs and resampling for the streaming path: pure functions and small stateful decoders.

Streams arrive as raw PCM (linear16 little-endian, G.711 μ-law or A-law) at any rate and
channel count; the core works on 16 kHz mono int16 per channel.
"""

from __future__ import annotations

import io
import os
import wave
from typing import TYPE_CHECKING, Literal

import numpy as np

from .errors import InvalidParameter
from .model.transcriber import SAMPLE_RATE

if TYPE_CHECKING:
    import av

Encoding = Literal["linear16", "mulaw", "alaw"]
ENCODINGS: dict[str, int] = {"linear16": 2, "mulaw": 1, "alaw": 1}     # encoding -> bytes per sample


def _mulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.uint8)
    sign = (u & 0x80) != 0
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    return np.where(sign, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.uint8) ^ 0x55
    sign = (a & 0x80) != 0
    exponent = (a >> 4) & 0x07
    mantissa = (a & 0x0F).astype(np.int32)
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8,
                         ((mantissa << 4) + 0x108) << np.maximum(exponent.astype(np.int32) - 1, 0))
    return np.where(sign, magnitude, -magnitude).astype(np.int16)


MULAW_TO_PCM = _mulaw_table()
ALAW_TO_PCM = _alaw_table()


def mulaw_encode(pcm: np.ndarray) -> bytes:
    """int16 samples to G.711 μ-law bytes (for tests, demos and the Twilio replay)."""
    x = pcm.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    x = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(x)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (x >> (exponent + 3)) & 0x0F
    return bytes((~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes())


def decode_samples(data: bytes, encoding: str) -> np.ndarray:
    """Whole samples of `encoding` to int16 (the caller keeps any trailing partial sample)."""
    if encoding == "linear16":
        return np.frombuffer(data, dtype="<i2").astype(np.int16)
    table = MULAW_TO_PCM if encoding == "mulaw" else ALAW_TO_PCM
    return table[np.frombuffer(data, dtype=np.uint8)]


class PcmDecoder:
    """Bytes of interleaved PCM in, int16 arrays of shape (frames, channels) out.

    Frames may split samples anywhere: an odd trailing byte (or part of a multi-channel
    frame) is kept and joined to the next chunk, so the stream is never shifted.
    """

    def __init__(self, encoding: str, channels: int) -> None:
        if encoding not in ENCODINGS:
            raise InvalidParameter(f"unsupported encoding {encoding!r}", param="encoding")
        self.encoding = encoding
        self.channels = channels
        self._frame_bytes = ENCODINGS[encoding] * channels
        self._pending = b""

    def feed(self, data: bytes) -> np.ndarray:
        data = self._pending + data
        usable = len(data) - len(data) % self._frame_bytes
        self._pending = data[usable:]
        samples = decode_samples(data[:usable], self.encoding)
        return samples.reshape(-1, self.channels)


class Resampler:
    """Stateful resampling of one int16 channel to 16 kHz (libswresample through PyAV)."""

    def __init__(self, source_rate: int, target_rate: int = SAMPLE_RATE) -> None:
        self.source_rate = source_rate
        self.target_rate = target_rate
        self._resampler: av.AudioResampler | None = None
        if source_rate != target_rate:
            import av

            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=target_rate)

    def _frames(self, frame: av.AudioFrame | None) -> np.ndarray:
        assert self._resampler is not None
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.int16) if out else np.zeros(0, np.int16)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        if self._resampler is None or len(samples) == 0:
            return samples.astype(np.int16, copy=False)
        import av

        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.int16).reshape(1, -1), format="s16",
            layout="mono")
        frame.sample_rate = self.source_rate
        return self._frames(frame)

    def flush(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, np.int16)
        return self._frames(None)


def to_float32(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32768.0


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV as int16 of shape (frames, channels), and its rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise InvalidParameter(f"{path}: only 16-bit PCM WAV is read here", param="file")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data.reshape(-1, w.getnchannels()).astype(np.int16), w.getframerate()


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """int16 samples, shape (frames,) or (frames, channels), as a WAV file."""
    samples = samples.reshape(len(samples), -1)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()
