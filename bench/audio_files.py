"""Audio files in every container the batch API takes, made from corpus WAVs with PyAV
(FFmpeg's encoders): for the batch tests and `bench/batch_speed.py`."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np

# name -> (container, audio codec, sample rate, channels, file suffix, add a video track)
FORMATS = {
    "wav": ("wav", "pcm_s16le", 44100, 2, ".wav", False),
    "mp3": ("mp3", "libmp3lame", 44100, 2, ".mp3", False),
    "m4a": ("ipod", "aac", 48000, 2, ".m4a", False),
    "webm": ("webm", "libopus", 48000, 1, ".webm", False),
    "flac": ("flac", "flac", 22050, 1, ".flac", False),
    "ogg": ("ogg", "libopus", 48000, 2, ".ogg", False),
    "opus": ("opus", "libopus", 48000, 1, ".opus", False),
    "aac": ("adts", "aac", 32000, 1, ".aac", False),
    "mp4": ("mp4", "aac", 44100, 2, ".mp4", True),
    "mov": ("mov", "aac", 48000, 2, ".mov", True),
}


def encode(pcm16k: np.ndarray, name: str) -> bytes:
    """16 kHz mono int16 as a file of format `name` (resampled, upmixed as the table says)."""
    container, codec, rate, channels, _, video = FORMATS[name]
    layout = "stereo" if channels == 2 else "mono"
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        if video:
            picture = out.add_stream("mpeg4", rate=5)
            picture.width, picture.height, picture.pix_fmt = 64, 48, "yuv420p"
            for i in range(int(len(pcm16k) / 16000 * 5)):
                frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i % 255, np.uint8),
                                                   format="rgb24")
                for packet in picture.encode(frame):
                    out.mux(packet)
            for packet in picture.encode(None):
                out.mux(packet)
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout,
                                      rate=rate)
        frame = av.AudioFrame.from_ndarray(pcm16k.astype(np.int16).reshape(1, -1),
                                           format="s16", layout="mono")
        frame.sample_rate = 16000
        for resampled in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(resampled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def flac_claiming(seconds: float, pcm16k: np.ndarray) -> bytes:
    """A FLAC file of `pcm16k` whose STREAMINFO claims `seconds` (0 = "unknown")."""
    data = bytearray(encode(pcm16k.astype(np.int16), "flac_16k"))
    value = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)
    data[18:26] = (value | int(seconds * 16000)).to_bytes(8, "big")
    return bytes(data)


FORMATS["flac_16k"] = ("flac", "flac", 16000, 1, ".flac", False)


def write_long_silence(path: Path, minutes: int, speech: np.ndarray, every_min: int = 20) -> None:
    """A mostly silent 16 kHz FLAC, `speech` one second into every `every_min`-th minute."""
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=16000, layout="mono")
        silence = np.zeros(16000 * 60, np.int16)
        for minute in range(minutes):
            block = silence
            if minute % every_min == 0:
                block = silence.copy()
                block[16000:16000 + len(speech)] = speech
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = 16000
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def concatenate(clips: list[np.ndarray], gap_s: float = 1.0) -> np.ndarray:
    gap = np.zeros(int(gap_s * 16000), np.int16)
    parts = []
    for clip in clips:
        parts += [clip, gap]
    return np.concatenate(parts[:-1])
