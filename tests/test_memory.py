"""The server's memory settings (`streaming/model/memory.py`): set before the model loads,
they keep resident memory flat however many window lengths the adaptive window uses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from streaming.model import memory

REPO = Path(__file__).resolve().parent.parent

# In a fresh process (oneDNN reads its cache setting once): load base the way the server
# does, transcribe 12 prefixes of one reading, 10-21 s (12 window lengths, each its own
# encoder shape), and print how much the resident size grew after the first.
GROWTH_SCRIPT = """
import os

from bench.processes import rss_bytes
from streaming.audio import to_float32
from streaming.config import ModelConfig
from streaming.eval.corpus import item
from streaming.model.engine import load_local
from streaming.model.memory import release_free_memory, tune_memory
from streaming.model.transcriber import SAMPLE_RATE, TranscribeOptions

def rss_mb():
    return rss_bytes(os.getpid()) / 2**20

tune_memory()
model = load_local("base", ModelConfig())
audio = to_float32(item("long_en_two_cities_p1").mono16k())
english = TranscribeOptions(language="en", temperature=0.0)
model.transcribe(audio[: 9 * SAMPLE_RATE], english)
release_free_memory()
start = rss_mb()
for seconds in range(10, 22):
    model.transcribe(audio[: seconds * SAMPLE_RATE], english)
    release_free_memory()
print(rss_mb() - start)
"""


def test_tune_memory_bounds_the_primitive_cache_unless_the_environment_sets_it(monkeypatch):
    monkeypatch.delenv(memory.PRIMITIVE_CACHE, raising=False)
    memory.tune_memory()
    assert memory.PRIMITIVE_CACHE_CAPACITY == 8
    assert os.environ[memory.PRIMITIVE_CACHE] == "8"
    monkeypatch.setenv(memory.PRIMITIVE_CACHE, "64")
    memory.tune_memory()
    assert os.environ[memory.PRIMITIVE_CACHE] == "64"


def test_resident_memory_stays_flat_across_window_lengths():
    # Without the bound, oneDNN kept ~2 MB per window length: 38 MB over 18 lengths.
    done = subprocess.run([sys.executable, "-c", GROWTH_SCRIPT], capture_output=True,
                          text=True, timeout=600, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    grown = float(done.stdout.split()[-1])
    print(f"RSS grew {grown:.1f} MB over 12 window lengths")
    assert grown < 12, f"RSS grew {grown:.1f} MB over 12 window lengths"
