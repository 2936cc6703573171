"""Suite 5, side by side with a peer: WhisperLive (PyPI `whisper-live`), offline.

The peer runs in its own virtual environment, created here on first use under
`.cache/peers/` (see `ensure_env`; the recipe is the one in shared/PEERS.md): the wheel
without its dependencies, then only what its faster_whisper backend imports, all from
the package registry; torch is the CPU build pip finds locally. Its server is started
from Python bound to 127.0.0.1 (peer_server.py), with `OMP_NUM_THREADS` set to our CPU
thread count (it creates its model with cpu_threads=0), `HF_HUB_OFFLINE=1`, and its
model pointed at the very CTranslate2 directory our server loads. Its compute type on
CPU is int8, as ours.

Both servers get the same streams (streams.workload), sent the same way: real time,
20 ms chunks; after the stream's own trailing silence each client keeps sending silence
for up to `peer_drain_s` until every utterance has a final, then closes. Both sweeps run
every level (no early stop), ours first, then theirs, with the other server idle.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from streaming.eval.corpus import REPO
from streaming.model.weights import resolve_model

from . import concurrency, latency, metrics, processes, streams
from .report import num, pct, ratio

WHISPER_LIVE = "whisper-live==0.10.0"
# What its faster_whisper path imports (it uses requests without declaring it).
DEPENDENCIES = ["torch==2.13.0", "faster-whisper==1.2.0", "requests", "websockets",
                "numpy<2.5", "scipy", "onnxruntime", "av", "fastapi", "uvicorn",
                "python-multipart", "huggingface_hub", "websocket-client", "soundfile"]
SILERO = "silero-vad"


def env_root() -> Path:
    return REPO / ".cache" / "peers" / "whisper-live-0.10.0"


def ensure_env(root: Path, log) -> Path:
    """The peer's Python, installing its environment first when it is not there yet."""
    python = root / "venv" / "bin" / "python"
    marker = root / "ready"
    if marker.is_file() and python.is_file():
        return python
    log(f"peer: creating its virtual environment in {root} (once; a few minutes)")
    root.mkdir(parents=True, exist_ok=True)
    pip_log = (root / "install.log").open("w")

    def pip(*args: str) -> None:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *args], check=True,
                       stdout=pip_log, stderr=subprocess.STDOUT)

    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(root / "venv")], check=True)
        pip("--no-deps", WHISPER_LIVE)
        pip(*DEPENDENCIES)
        pip("--no-deps", SILERO)
    except subprocess.CalledProcessError as exc:
        pip_log.close()
        tail = "\n".join((root / "install.log").read_text().splitlines()[-15:])
        raise RuntimeError(f"installing the peer failed ({exc}):\n{tail}") from exc
    pip_log.close()
    # whisper_live/vad.py downloads silero_vad.onnx unless it is in ~/.cache/whisper-live;
    # the peer runs with HOME set to root/home, so the copy from the silero-vad wheel goes there.
    onnx = next((root / "venv").glob("lib/python*/site-packages/silero_vad/data/silero_vad.onnx"))
    target = root / "home" / ".cache" / "whisper-live" / "silero_vad.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(onnx, target)
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True)
    marker.write_text(freeze.stdout)
    return python


def start_server(python: Path, root: Path, model_dir: Path, *, threads: int, max_clients: int,
                 log_path: Path) -> processes.ServerProcess:
    port = processes.free_port()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(root / "home"),
           "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "PYTHONUNBUFFERED": "1"}
    command = [str(python), str(Path(__file__).with_name("peer_server.py")), str(port),
               str(model_dir), str(max_clients)]
    server = processes.ServerProcess("WhisperLive", command, env, log_path, port=port)
    return server.start(lambda: processes.tcp_open(port), timeout_s=120)


# ---------------------------------------------------------------- the peer's protocol

def whisperlive_events(message: dict, at: float, seen: set, last_partial: list) -> list[streams.Event]:
    """Completed segments (each once) become finals; the unfinished one a partial."""
    out = []
    for segment in message.get("segments") or []:
        text = (segment.get("text") or "").strip()
        start, end = float(segment.get("start", 0)), float(segment.get("end", 0))
        if segment.get("completed"):
            key = (round(start, 2), text)
            if key not in seen:
                seen.add(key)
                out.append(streams.Event(at=at, kind="final", text=text, start=start, end=end,
                                         raw=segment))
        elif text and [start, text] != last_partial:
            last_partial[:] = [start, text]
            out.append(streams.Event(at=at, kind="partial", text=text, start=start, end=end,
                                     raw=segment))
    return out


async def run_whisperlive(port: int, stream: streams.Stream, *, speed: float = 1.0,
                          chunk_ms: int = 20, drain_s: float = 0.0, done=None,
                          timeout_s: float = 60.0, language: str = "en") -> streams.StreamRun:
    """Send `stream` as float32 frames (its default format), then END_OF_AUDIO."""
    from websockets.asyncio.client import connect

    run = streams.StreamRun(stream=stream)
    seen: set = set()
    last_partial: list = []
    try:
        async with connect(f"ws://127.0.0.1:{port}", max_size=None, open_timeout=30,
                           ping_interval=None) as ws:
            await ws.send(json.dumps({
                "uid": str(uuid.uuid4()), "language": language, "task": "transcribe",
                "model": "base", "use_vad": True, "send_last_n_segments": 10,
                "no_speech_thresh": 0.45, "same_output_threshold": 10}))
            while True:
                ready = json.loads(await asyncio.wait_for(ws.recv(), 120))
                if ready.get("message") == "SERVER_READY":
                    break
                if ready.get("status") in ("WAIT", "ERROR"):
                    raise RuntimeError(f"peer refused the stream: {ready}")

            async def receive() -> None:
                async for message in ws:
                    if isinstance(message, str):
                        run.events += whisperlive_events(json.loads(message), time.perf_counter(),
                                                         seen, last_partial)

            receiver = asyncio.create_task(receive())
            await streams.send_paced(
                run, lambda piece: ws.send((piece.astype("float32") / 32768.0).tobytes()),
                speed=speed, chunk_ms=chunk_ms, extra_silence_s=drain_s,
                stop=done and (lambda: done(run)))
            await ws.send(b"END_OF_AUDIO")
            run.closed_at = time.perf_counter()
            try:
                await asyncio.wait_for(receiver, timeout_s)
            except asyncio.TimeoutError:
                receiver.cancel()
    except Exception as exc:  # recorded, reported
        run.error = f"{type(exc).__name__}: {exc}"
    run.finished_at = time.perf_counter()
    return run


def all_finalized(run: streams.StreamRun) -> bool:
    return all(not t.lost for t in metrics.utterance_timings(run))


# ---------------------------------------------------------------- the suite

def comparison(ours: dict, theirs: dict) -> list[list[str]]:
    """Rows of (measure, ours, theirs, ours / theirs); per-stream rows at the lowest level."""
    o1, t1 = ours["levels"][0], theirs["levels"][0]
    n = o1["streams"]
    one = f"{n} stream" + ("s" if n > 1 else "")
    rows = []
    for key, label in (("p50", f"final latency p50, {one}"), ("p95", f"final latency p95, {one}")):
        a, b = o1["final_latency_s"][key], t1["final_latency_s"][key]
        rows.append([label, num(a, 2, " s"), num(b, 2, " s"), ratio(a, b)])
    rows.append([f"first transcript after speech start p50, {one}",
                 num(o1["first_partial_s"]["p50"], 2, " s"), num(t1["first_partial_s"]["p50"], 2, " s"),
                 ratio(o1["first_partial_s"]["p50"], t1["first_partial_s"]["p50"])])
    rows.append([f"WER of finals, {one}", pct(o1["wer"]), pct(t1["wer"]), ratio(o1["wer"], t1["wer"])])
    rows.append([f"WER of finals + a trailing partial, {one}", pct(o1["wer_with_last_partial"]),
                 pct(t1["wer_with_last_partial"]),
                 ratio(o1["wer_with_last_partial"], t1["wer_with_last_partial"])])
    lost_o = sum(lv["finals_lost"] for lv in ours["levels"])
    lost_t = sum(lv["finals_lost"] for lv in theirs["levels"])
    total = sum(lv["utterances"] for lv in ours["levels"])
    rows.append(["utterances never finalized, all levels", f"{lost_o} of {total}",
                 f"{lost_t} of {total}", "–"])
    rows.append([f"concurrency limit (p95 ≤ max({ours['bound_floor_s']} s, 2 × own 1-stream "
                 "median), none lost)", str(ours["limit"]),
                 str(theirs["limit"]), ratio(ours["limit"], theirs["limit"])])
    rows.append([f"server CPU, {one}", num(o1["server"]["cpu_percent"], 0, " %"),
                 num(t1["server"]["cpu_percent"], 0, " %"),
                 ratio(o1["server"]["cpu_percent"], t1["server"]["cpu_percent"])])
    top = max(lv["streams"] for lv in ours["levels"])
    rows.append([f"server peak RSS, {top} streams",
                 num(ours["levels"][-1]["server"]["peak_rss_mb"], 0, " MB"),
                 num(theirs["levels"][-1]["server"]["peak_rss_mb"], 0, " MB"),
                 ratio(ours["levels"][-1]["server"]["peak_rss_mb"],
                       theirs["levels"][-1]["server"]["peak_rss_mb"])])
    return rows


def run(context) -> dict:
    settings = context.settings
    root = env_root()
    try:
        python = ensure_env(root, context.log)
    except Exception as exc:
        return {"unavailable": f"its environment could not be installed offline: {exc}"}
    model_dir = resolve_model(settings.model).path
    levels = settings.peer_levels
    sweep_args = dict(utterances=settings.peer_utterances, pause_s=settings.pause_s,
                      floor_s=settings.latency_bound_s, log=context.log, stop_on_fail=False)

    context.log(f"peer: streamscribe, levels {levels}")
    asyncio.run(latency.warm_up(context.target.ws_url))
    ours_driver = functools.partial(
        streams.run_deepgram, context.target.ws_url, speed=1.0, chunk_ms=20,
        params={"endpointing": settings.endpointing_ms}, drain_s=settings.peer_drain_s,
        done=all_finalized)
    ours = concurrency.sweep({"streamscribe": concurrency.Side(
        ours_driver, context.target.pid,
        functools.partial(concurrency.scheduler_stats, context.target.http_url))},
        levels, **sweep_args)["streamscribe"]

    server = start_server(python, root, model_dir, threads=settings.threads_per_call,
                          max_clients=max(levels) + 1,
                          log_path=context.work_dir / "server-whisperlive.log")
    try:
        context.log(f"peer: WhisperLive (pid {server.pid}), levels {levels}")
        theirs_driver = functools.partial(run_whisperlive, server.port, speed=1.0, chunk_ms=20,
                                          drain_s=settings.peer_drain_s, done=all_finalized)
        # loads its model (it does so on the first connection) and runs its first calls
        warm = asyncio.run(run_whisperlive(server.port, streams.workload(1, 1, tail_s=1.0)[0],
                                           speed=0))
        if warm.error:
            return {"unavailable": f"its server started but a stream failed: {warm.error}; "
                                   f"log:\n{server.log_tail()}"}
        time.sleep(5)  # its per-client thread finishes the call it was in
        theirs = concurrency.sweep({"WhisperLive": concurrency.Side(theirs_driver, server.pid)},
                                   levels, **sweep_args)["WhisperLive"]
    finally:
        server.stop()
    rows = comparison(ours, theirs)
    setup = (
        f"WhisperLive 0.10.0 (faster_whisper backend, its defaults: beam 5, its Silero VAD, "
        f"a segment is final when new speech follows or its text repeats > 10 times) with "
        f"`single_model=True`, `OMP_NUM_THREADS={settings.threads_per_call}`, int8, the same "
        f"CTranslate2 directory as ours (`{settings.model}`). Ours: beam "
        f"{settings.beam_size}, endpointing {settings.endpointing_ms} ms. Same streams "
        f"({settings.peer_utterances} utterances each, {settings.pause_s} s pauses), real "
        f"time; after each stream the client sends up to {settings.peer_drain_s} s more "
        "silence until every utterance has a final. An utterance with no final by then is "
        "counted as never finalized, and its words as deleted in the WER of finals; the "
        "second WER row also counts the text of a partial left unfinalized at the end. "
        "The peer's environment: "
        f"`{root.relative_to(REPO)}` (packages in its `ready` file).")
    return {"setup": setup, "comparison": rows, "ours": ours, "theirs": theirs,
            "headline": [[f"vs WhisperLive: {label}",
                           f"{mine} vs {its} (ours / theirs {r})"]
                          for label, mine, its, r in (rows[0], rows[1], rows[3], rows[4], rows[6])]}
