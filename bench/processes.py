"""Servers under test as subprocesses, and their CPU time and memory read from /proc.

No psutil: `/proc/<pid>/stat` gives user+system CPU ticks, `/proc/<pid>/status` VmRSS.
A process's threads are included in its own numbers; its live children are followed
through `/proc/<pid>/task/*/children`, and children that ended and were waited for are in
its cutime/cstime, so a process tree's CPU time never goes backwards when one exits.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(c) for c in task.read_text().split()]
        except OSError:
            pass
    return out


def process_tree(pid: int) -> list[int]:
    pids, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        pids.append(current)
        frontier += _children(current)
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by `pid`, all its threads, its live children
    and the children it has waited for."""
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])   # utime, stime, cutime, cstime
        except (OSError, IndexError, ValueError):
            pass
    return total / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class ResourceMonitor:
    """Samples a process tree's RSS every `interval_s` between start() and stop();
    CPU is the difference of cumulative CPU seconds: `cpu_seconds`, and as a share of one
    core. With `keep_samples`, `samples` holds (seconds since start, RSS MB) pairs."""

    def __init__(self, pid: int | None, interval_s: float = 0.25,
                 keep_samples: bool = False) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.keep_samples = keep_samples
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_rss = 0
        self._cpu0 = self._t0 = 0.0
        self.result: dict = {}

    def _record(self) -> None:
        rss = rss_bytes(self.pid)
        self.peak_rss = max(self.peak_rss, rss)
        if self.keep_samples:
            self.samples.append((round(time.perf_counter() - self._t0, 2), rss / 2**20))

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._record()

    def start(self) -> "ResourceMonitor":
        if self.pid is None:
            return self
        self._cpu0, self._t0 = cpu_seconds(self.pid), time.perf_counter()
        self._record()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict:
        if self.pid is None:
            self.result = {"cpu_percent": None, "cpu_seconds": None, "wall_seconds": None,
                           "peak_rss_mb": None, "rss_end_mb": None}
        else:
            self._stop.set()
            self._thread.join()
            wall = time.perf_counter() - self._t0
            cpu = cpu_seconds(self.pid) - self._cpu0
            self._record()
            self.result = {"cpu_percent": 100.0 * cpu / wall if wall else None,
                           "cpu_seconds": cpu, "wall_seconds": wall,
                           "peak_rss_mb": self.peak_rss / 2**20,
                           "rss_end_mb": self.samples[-1][1] if self.samples
                           else rss_bytes(self.pid) / 2**20}
        if self.keep_samples:
            self.result["samples"] = self.samples
        return self.result


def usage_per_audio(usages: list[dict], audio_seconds: float) -> dict:
    """Several monitors' results of one server as one: CPU seconds summed, and divided by
    the audio seconds streamed (`cpu_per_audio_s`), CPU share over the summed wall time,
    the highest peak RSS."""
    known = [u for u in usages if u.get("cpu_seconds") is not None]
    if not known:
        return {"cpu_percent": None, "cpu_seconds": None, "wall_seconds": None,
                "peak_rss_mb": None, "rss_end_mb": None, "audio_seconds": audio_seconds,
                "cpu_per_audio_s": None}
    cpu = sum(u["cpu_seconds"] for u in known)
    wall = sum(u["wall_seconds"] for u in known)
    return {"cpu_percent": 100.0 * cpu / wall if wall else None, "cpu_seconds": cpu,
            "wall_seconds": wall, "peak_rss_mb": max(u["peak_rss_mb"] for u in known),
            "rss_end_mb": known[-1]["rss_end_mb"], "audio_seconds": audio_seconds,
            "cpu_per_audio_s": cpu / audio_seconds if audio_seconds else None}


@dataclass
class ServerProcess:
    """A server started as a subprocess; `ready` is polled until it returns True."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    port: int | None = None
    cwd: Path | None = None
    process: subprocess.Popen | None = None

    def start(self, ready, timeout_s: float = 180.0) -> "ServerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(self.command, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        cwd=self.cwd)
        log.close()
        deadline = time.monotonic() + timeout_s
        while not ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode} before it "
                                   f"was ready; log: {self.log_path}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.name} not ready after {timeout_s} s; log: "
                                   f"{self.log_path}\n{self.log_tail()}")
            time.sleep(0.2)
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)   # its own session: only what it started
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def http_json(url: str) -> dict | None:
    """The JSON body of a GET (a server's /healthz), or None when it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def machine_info() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0
    try:
        memory = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return {"cores": os.cpu_count(), "cpu_model": model or platform.processor(),
            "memory_gb": round(memory / 2**30, 1), "python": platform.python_version(),
            "platform": platform.platform(), "load_average": list(os.getloadavg())}
