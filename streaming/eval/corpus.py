"""The shared evaluation corpus (`../shared/eval/`): manifest entries and their audio.

Read in place, never copied. `STREAMSCRIBE_EVAL` overrides the location.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from streaming.audio import read_wav
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def eval_dir() -> Path:
    configured = os.environ.get("STREAMSCRIBE_EVAL")
    path = Path(configured) if configured else REPO.parent / "shared" / "eval"
    if not (path / "manifest.jsonl").is_file():
        raise FileNotFoundError(f"evaluation corpus not found at {path} (set STREAMSCRIBE_EVAL)")
    return path


@dataclass(frozen=True)
class Item:
    id: str
    audio: Path
    text: str
    language: str
    duration_s: float
    category: str
    origin: str
    text_alt: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def references(self) -> list[str]:
        return [self.text] + ([self.text_alt] if self.text_alt else [])

    def samples(self) -> tuple[np.ndarray, int]:
        """int16 (frames, channels) and the sample rate."""
        return read_wav(self.audio)

    def mono16k(self) -> np.ndarray:
        samples, rate = self.samples()
        if rate != 16000 or samples.shape[1] != 1:
            raise ValueError(f"{self.id} is not 16 kHz mono")
        return samples[:, 0]


@lru_cache(maxsize=1)
def items() -> tuple[Item, ...]:
    root = eval_dir()
    out = []
    for line in (root / "manifest.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        out.append(Item(id=raw["id"], audio=root / raw["audio"], text=raw["text"],
                        language=raw["language"], duration_s=float(raw["duration_s"]),
                        category=raw["category"], origin=raw["origin"],
                        text_alt=raw.get("text_alt"), raw=raw))
    return tuple(out)


def item(item_id: str) -> Item:
    for entry in items():
        if entry.id == item_id:
            return entry
    raise KeyError(item_id)


def human_english() -> list[Item]:
    """The set the corpus README calls certainly human English."""
    return [i for i in items()
            if i.origin == "human" and i.language == "en" and i.category.startswith("en_")]
