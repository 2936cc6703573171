"""Offline speech synthesis with espeak-ng (Debian package `espeak-ng`), as int16 samples."""

from __future__ import annotations

import shutil
import struct
import subprocess

import numpy as np

__all__ = ["TtsError", "espeak"]


class TtsError(RuntimeError):
    pass


def _pcm_from_wav(data: bytes) -> tuple[np.ndarray, int]:
    # espeak-ng writes a streaming WAV header (sizes 0x7fffffff): walk to the data chunk and
    # take every byte after it, instead of trusting the sizes.
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise TtsError("espeak-ng did not return a WAV file")
    pos, rate = 12, None
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[pos + 8:pos + 24])
            if channels != 1 or bits != 16:
                raise TtsError(f"unexpected espeak-ng format: {channels} ch, {bits} bit")
        elif chunk == b"data":
            body = data[pos + 8:]
            body = body[:len(body) - len(body) % 2]
            return np.frombuffer(body, dtype="<i2").astype(np.int16), int(rate or 22050)
        pos += 8 + size + (size & 1)
    raise TtsError("no audio in espeak-ng's output")


def espeak(text: str, *, voice: str = "en-us", words_per_minute: int = 175,
           executable: str | None = None) -> tuple[np.ndarray, int]:
    """`text` spoken by espeak-ng: (int16 mono samples, sample rate)."""
    program = executable or shutil.which("espeak-ng") or shutil.which("espeak")
    if program is None:
        raise TtsError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    result = subprocess.run([program, "--stdout", "-v", voice, "-s", str(words_per_minute), text],
                            capture_output=True, timeout=60, check=False)
    if result.returncode != 0:
        raise TtsError(f"espeak-ng failed: {result.stderr.decode(errors='replace').strip()}")
    return _pcm_from_wav(result.stdout)
