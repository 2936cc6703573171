"""Batch API speed: real-time factor through `/v1/audio/transcriptions` vs faster-whisper
called directly on the same file with the same model, in one run.

`run(base_url, model_dir, files)` is what the harness calls; any format PyAV reads will do
(the direct side hands faster-whisper the same file path). RTF = wall seconds / audio seconds;
the API side includes upload, decoding, splitting and stitching, so `ratio` is our overhead.
Files listed in `api_only` (e.g. a four-hour recording) are sent through the API alone:
faster-whisper's own `decode_audio` would hold all of it in memory.

`python -m bench.batch_speed` starts a server, builds a 60 s+ file, a ~10 min file and a
four-hour mostly silent one from the corpus, and prints the numbers as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from streaming.batch.decode import AudioFile


def _duration(path: Path) -> float:
    with AudioFile(path) as audio:
        for _ in audio.chunks():
            pass
        return audio.seconds_decoded


def _peak_rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def run(base_url: str, model_dir: str, files: list[Path], *, language: str = "en",
        compute_type: str = "int8", cpu_threads: int = 2, beam_size: int = 1,
        model: str = "whisper-1", api_only: list[Path] = (), server_pid: int | None = None
        ) -> dict:
    """Per file: api_s, direct_s, their RTFs and ratio (api/direct); server peak RSS if given."""
    from faster_whisper import WhisperModel

    direct_model = None
    rows = []
    with httpx.Client(timeout=4 * 3600) as client:
        for path in [*files, *api_only]:
            path = Path(path)
            duration = _duration(path)
            started = time.perf_counter()
            with path.open("rb") as handle:
                response = client.post(
                    f"{base_url}/v1/audio/transcriptions",
                    files={"file": (path.name, handle)},
                    data={"model": model, "language": language, "response_format": "json",
                          "temperature": "0"})
            response.raise_for_status()
            api_s = time.perf_counter() - started
            row = {"file": path.name, "duration_s": round(duration, 1), "api_s": round(api_s, 2),
                   "api_rtf": round(api_s / duration, 4),
                   "server_peak_rss_mb": _peak_rss_mb(server_pid),
                   "words": len(response.json()["text"].split())}
            if path not in api_only:
                if direct_model is None:
                    direct_model = WhisperModel(model_dir, device="cpu", compute_type=compute_type,
                                                cpu_threads=cpu_threads, local_files_only=True)
                started = time.perf_counter()
                segments, _ = direct_model.transcribe(str(path), language=language,
                                                      beam_size=beam_size, temperature=0.0)
                direct_words = sum(len(s.text.split()) for s in segments)
                direct_s = time.perf_counter() - started
                row.update(direct_s=round(direct_s, 2), direct_rtf=round(direct_s / duration, 4),
                           ratio=round(api_s / direct_s, 3), direct_words=direct_words)
            rows.append(row)
    return {"files": rows, "model_dir": str(model_dir), "compute_type": compute_type,
            "cpu_threads": cpu_threads, "beam_size": beam_size,
            "method": "API: multipart upload, json, temperature 0, language given; wall time of "
                      "the request. Direct: WhisperModel(same dir).transcribe(path, language, "
                      "beam_size, temperature=0), segments consumed. Sequential, one run."}


def _make_files(root: Path) -> tuple[list[Path], list[Path]]:
    from bench.audio_files import concatenate, encode, write_long_silence
    from streaming.eval.corpus import human_english, item

    minute = root / "two_cities_86s.mp3"
    minute.write_bytes(encode(item("long_en_two_cities_p1_p3").mono16k(), "mp3"))
    clips = [i.mono16k() for i in human_english()]
    speech = concatenate(clips * 3, gap_s=0.8)[: 16000 * 600]
    ten = root / "english_10min.m4a"
    ten.write_bytes(encode(speech, "m4a"))
    four = root / "silent_4h.flac"
    write_long_silence(four, 240, item("en_jfk_inaugural").mono16k())
    return [minute, ten], [four]


def main() -> int:
    from streaming.model.weights import resolve_model

    port = int(os.environ.get("BENCH_PORT", "8765"))
    with tempfile.TemporaryDirectory() as tmp:
        files, api_only = _make_files(Path(tmp))
        server = subprocess.Popen([sys.executable, "-m", "streaming.cli", "serve",
                                   "--port", str(port)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            base_url = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(base_url + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            result = run(base_url, str(resolve_model("base").path), files, api_only=api_only,
                         server_pid=server.pid)
        finally:
            server.terminate()
            server.wait(30)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
