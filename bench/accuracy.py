"""Suite 1, accuracy: WER (CER for zh/ja/ko) on the shared corpus, batch path vs streaming path.

Batch path: each file posted whole to `/v1/audio/transcriptions` (OpenAI-compatible).
Streaming path: the same audio (0.5 s of silence before, 1 s after) through `/v1/listen`
with the server's real VAD segmentation, fed faster than real time, interim results off;
the hypothesis is the finals joined in order. Both paths are told the item's language.
Streams run STREAMS_AT_ONCE at a time (the model still takes one call at a time; this only
hides per-connection gaps), batch requests one at a time.
Text is normalized before scoring as documented in scoring.py. Items that are not
16 kHz mono (the two stereo two-speaker files) are listed as skipped.

Rates are pooled per group (sum of errors / sum of reference lengths), per category and
language; `ratio` is streaming / batch (1.0 means streaming costs no accuracy).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import httpx

from streaming.audio import wav_bytes
from streaming.eval import corpus
from streaming.eval.scoring import CHARACTER_LANGUAGES, corpus_error_rate, error_rate

from . import compare, metrics, streams

STREAMS_AT_ONCE = 2


def eligible(settings) -> tuple[list[corpus.Item], list[dict]]:
    chosen = [corpus.item(i) for i in settings.accuracy_items] if settings.accuracy_items \
        else list(corpus.items())
    usable, skipped = [], []
    for item in chosen:
        samples, rate = item.samples()
        if rate != streams.RATE or samples.shape[1] != 1:
            skipped.append({"id": item.id, "why": f"{samples.shape[1]} channels at {rate} Hz"})
        else:
            usable.append(item)
    return usable, skipped


def transcribe_batch(client: httpx.Client, http_url: str, item: corpus.Item, model: str) -> str:
    response = client.post(
        f"{http_url}/v1/audio/transcriptions",
        files={"file": (item.audio.name, wav_bytes(item.mono16k()), "audio/wav")},
        data={"model": model, "language": item.language, "response_format": "json",
              "temperature": "0"})
    response.raise_for_status()
    return response.json()["text"]


async def transcribe_streaming(ws_url: str, item: corpus.Item, speed: float,
                               endpointing_ms: int) -> streams.StreamRun:
    stream = streams.build_stream([item], lead_s=0.5, tail_s=1.0)
    return await streams.run_deepgram(
        ws_url, stream, speed=speed, chunk_ms=100,
        params={"interim_results": "false", "endpointing": endpointing_ms})


async def transcribe_all_streaming(ws_url: str, items: list[corpus.Item], speed: float,
                                   endpointing_ms: int) -> list[streams.StreamRun]:
    slots = asyncio.Semaphore(STREAMS_AT_ONCE)

    async def one(item: corpus.Item) -> streams.StreamRun:
        async with slots:
            return await transcribe_streaming(ws_url, item, speed, endpointing_ms)

    return list(await asyncio.gather(*(one(item) for item in items)))


def group_rates(rows: list[dict], key) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    out = []
    for name, members in sorted(groups.items()):
        entry = {"group": list(name), "n": len(members),
                 "metric": "CER" if all(m["language"] in CHARACTER_LANGUAGES for m in members)
                 else "WER"}
        for path in ("batch", "streaming"):
            pairs = [(m["references"], m[path], m["language"]) for m in members
                     if m.get(path) is not None]
            entry[path] = corpus_error_rate(pairs) if len(pairs) == len(members) else None
        entry["ratio"] = (entry["streaming"] / entry["batch"]
                          if entry["batch"] and entry["streaming"] is not None else None)
        out.append(entry)
    return out


def run(context) -> dict:
    """Ours, then (one after the other: accuracy does not depend on the machine's load)
    the baseline when there is one."""
    settings = context.settings
    items, skipped = eligible(settings)
    context.log(f"accuracy: {len(items)} items ({sum(i.duration_s for i in items):.0f} s), "
                f"{len(skipped)} skipped")
    out = {**measure(context.target, settings, items, context.log), "skipped": skipped}
    if context.baseline:
        out["baseline"] = {**measure(context.baseline, settings, items, context.log),
                           "skipped": skipped}
        out["comparison"] = compare.accuracy(out, out["baseline"])
    return out


def measure(target, settings, items: list[corpus.Item], log) -> dict:
    """Both paths of one server on `items`: per-item rows and pooled rates per group."""
    rows = [{"id": item.id, "category": item.category, "language": item.language,
             "origin": item.origin, "duration_s": item.duration_s,
             "references": item.references()} for item in items]
    batch_error = None
    with httpx.Client(timeout=600) as client:
        for item, row in zip(items, rows):
            try:
                row["batch"] = transcribe_batch(client, target.http_url, item, settings.model)
            except httpx.HTTPError as exc:
                batch_error = f"batch path failed: {type(exc).__name__}: {exc}"
                log(batch_error)
                break
    log(f"accuracy ({target.label}): batch path done, streaming path ...")
    runs = asyncio.run(transcribe_all_streaming(target.ws_url, items, settings.accuracy_speed,
                                                settings.endpointing_ms))
    for item, row, run_ in zip(items, rows, runs):
        row["streaming"] = metrics.final_text(run_) if not run_.error else None
        if run_.error:
            row["streaming_error"] = run_.error
        for path in ("batch", "streaming"):
            if row.get(path) is not None:
                row[f"{path}_rate"] = error_rate(row["references"], row[path], item.language)
    words = [r for r in rows if r["language"] not in CHARACTER_LANGUAGES]
    human_en = [r for r in rows if r["origin"] == "human" and r["language"] == "en"
                and r["category"].startswith("en_")]
    overall = group_rates(
        [*[{**r, "_g": "all word-scored (WER)"} for r in words],
         *[{**r, "_g": "zh/ja/ko (CER)"} for r in rows if r["language"] in CHARACTER_LANGUAGES],
         *[{**r, "_g": "human English en_* (WER)"} for r in human_en]],
        key=lambda r: (r["_g"],))
    return {
        "items": len(rows), "audio_seconds": sum(r["duration_s"] for r in rows),
        "stream_speed": settings.accuracy_speed or "unpaced", "batch_error": batch_error,
        "overall": overall,
        "by_category_language": group_rates(rows, key=lambda r: (r["category"], r["language"])),
        "by_language": group_rates(rows, key=lambda r: (r["language"],)),
        "rows": rows,
    }
