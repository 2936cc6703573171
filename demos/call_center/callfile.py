"""Reading a call recording: a WAV of G.711 μ-law (format 7) or 16-bit PCM, any channel count.

Python's `wave` reads only PCM, so the RIFF chunks are walked here. The result is what
`/v1/listen` takes as is: interleaved bytes plus the encoding, rate and channel count.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streaming.audio import MULAW_TO_PCM, mulaw_encode

FORMATS = {1: "linear16", 7: "mulaw", 6: "alaw"}


@dataclass(frozen=True)
class CallAudio:
    data: bytes            # interleaved samples
    encoding: str          # linear16 | mulaw | alaw
    sample_rate: int
    channels: int

    @property
    def bytes_per_frame(self) -> int:
        return self.channels * (2 if self.encoding == "linear16" else 1)

    @property
    def duration(self) -> float:
        return len(self.data) / self.bytes_per_frame / self.sample_rate

    def channel_mulaw(self, index: int) -> bytes:
        """One channel as μ-law bytes (converted from PCM if needed; rate unchanged)."""
        if self.encoding == "mulaw":
            return self.data[index::self.channels]
        if self.encoding != "linear16":
            raise ValueError(f"cannot convert {self.encoding} to μ-law here")
        pcm = np.frombuffer(self.data, dtype="<i2").reshape(-1, self.channels)[:, index]
        return mulaw_encode(pcm)

    def channel_pcm(self, index: int) -> np.ndarray:
        if self.encoding == "mulaw":
            return MULAW_TO_PCM[np.frombuffer(self.channel_mulaw(index), dtype=np.uint8)]
        return np.frombuffer(self.data, dtype="<i2").reshape(-1, self.channels)[:, index].copy()


def read_call(path: str | Path) -> CallAudio:
    raw = Path(path).read_bytes()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    fmt = data = None
    pos = 12
    while pos + 8 <= len(raw):
        chunk_id, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        body = raw[pos + 8:pos + 8 + size]
        if chunk_id == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif chunk_id == b"data":
            data = body
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise ValueError(f"{path}: no fmt or data chunk")
    tag, channels, rate, _, _, bits = fmt
    if tag == 0xFFFE and len(raw) > 0:   # WAVE_FORMAT_EXTENSIBLE: the sub-format's first 2 bytes
        tag = struct.unpack("<H", raw[raw.index(b"fmt ") + 8 + 24:][:2])[0]
    if tag not in FORMATS or (tag == 1 and bits != 16):
        raise ValueError(f"{path}: WAV format {tag} ({bits} bit) is not μ-law, A-law or 16-bit PCM")
    frame = channels * (2 if tag == 1 else 1)
    return CallAudio(data=data[:len(data) - len(data) % frame], encoding=FORMATS[tag],
                     sample_rate=rate, channels=channels)
