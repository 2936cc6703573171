"""Keep the server's resident memory near what the models need (glibc's malloc, oneDNN).

Model calls allocate large short-lived buffers (a 30 s encoder window's attention alone is
~70 MB) from whichever worker thread runs them. By default glibc gives each thread its own
arena and keeps freed memory mapped, so the resident size ratchets up to several calls'
worth. With two arenas, buffers of 8 MB and more mapped on their own (returned whole when
freed), and the free memory handed back after each call, it stays near the models plus one
call: peak 380–405 MB instead of 435–500 MB (run to run) for two live streams and an 86 s
batch file with base and tiny.en loaded (docs/streaming.md). Smaller thresholds saved a little more memory but
cost ~30 % more CPU in page faults. Elsewhere than glibc these are no-ops.

CTranslate2 runs the encoder's convolutions on oneDNN, which caches a compiled primitive,
with its buffers, for every input shape it has seen (1024 by default). The adaptive window
gives nearly every call above the minimum window its own shape, so that cache alone grew by
~2 MB per window length (38 MB over 18 lengths; with 8 entries: 2 MB) and held the server at
~430 MB after the accuracy workload instead of ~290 MB. Eight entries keep the common shapes
(the minimum window, for each loaded model) at no measurable CPU cost.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_MMAP_THRESHOLD = -3      # mallopt parameters, from glibc's malloc.h
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 8 << 20
PRIMITIVE_CACHE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
PRIMITIVE_CACHE_CAPACITY = 8


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def tune_memory(arenas: int = 2) -> None:
    """Cap malloc's arenas (threads created later share them), map large buffers on their
    own, and bound oneDNN's primitive cache unless the environment already sets it. Call
    before the first model is loaded: oneDNN reads its setting once, on first use."""
    os.environ.setdefault(PRIMITIVE_CACHE, str(PRIMITIVE_CACHE_CAPACITY))
    if _LIBC is not None:
        _LIBC.mallopt(_M_ARENA_MAX, arenas)
        _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release_free_memory() -> None:
    """Hand freed heap memory back to the system (after a model call)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
