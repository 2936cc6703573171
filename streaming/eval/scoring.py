"""Text normalization and word/character error rates.

Normalization (both sides): Unicode NFKC, lower case, `&` -> "and", `%` -> "percent",
digits kept as digits with thousands separators removed, every other punctuation mark
removed (apostrophes inside words kept), whitespace collapsed. Numbers are not spelled out,
so a reference "one two three" against "1, 2, 3" counts as errors unless `text_alt`
gives the other form: score against every accepted reference and keep the best.
zh/ja/ko are scored by characters (CER), with spaces removed.
"""

from __future__ import annotations

import re
import unicodedata

CHARACTER_LANGUAGES = {"zh", "ja", "ko"}

_THOUSANDS = re.compile(r"(?<=\d)[,.](?=\d{3}\b)")
_PUNCT = re.compile(r"[^\w\s']|_")
_EDGE_APOSTROPHE = re.compile(r"(^|\s)'+|'+(\s|$)")


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("’", "'").replace("&", " and ").replace("%", " percent ")
    text = _THOUSANDS.sub("", text)
    text = _PUNCT.sub(" ", text)
    text = _EDGE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1,
                             previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def tokens(text: str, language: str) -> list[str]:
    normal = normalize(text)
    if language in CHARACTER_LANGUAGES:
        return list(normal.replace(" ", ""))
    return normal.split()


def error_counts(references: list[str] | str, hypothesis: str, language: str = "en") -> tuple[int, int]:
    """(errors, reference length) against the best-matching accepted reference."""
    if isinstance(references, str):
        references = [references]
    best = None
    for reference in references:
        ref = tokens(reference, language)
        errors = edit_distance(ref, tokens(hypothesis, language))
        if best is None or errors / max(len(ref), 1) < best[0] / max(best[1], 1):
            best = (errors, len(ref))
    if best is None:
        raise ValueError("no reference")
    return best


def error_rate(references: list[str] | str, hypothesis: str, language: str = "en") -> float:
    errors, length = error_counts(references, hypothesis, language)
    return errors / max(length, 1)


def corpus_error_rate(pairs: list[tuple[list[str] | str, str, str]]) -> float:
    """Pooled rate over (references, hypothesis, language) triples: sum errors / sum length."""
    total_errors = total_length = 0
    for references, hypothesis, language in pairs:
        errors, length = error_counts(references, hypothesis, language)
        total_errors += errors
        total_length += length
    return total_errors / max(total_length, 1)
