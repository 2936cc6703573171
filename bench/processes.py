"""Servers under test as subprocesses, and their CPU time and memory read from /proc.

No psutil: `/proc/<pid>/stat` gives user+system CPU ticks, `/proc/<pid>/status` VmRSS.
A process's children (threads are included in the parent's numbers) are followed
through `/proc/<pid>/task/*/children`.
"""

from __future__ import annotations

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
    """User + system CPU seconds used so far by `pid` and its live children."""
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])   # utime, stime
        except (OSError, IndexError):
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
    CPU is the difference of cumulative CPU seconds, as a share of one core."""

    def __init__(self, pid: int | None, interval_s: float = 0.25) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_rss = 0
        self._cpu0 = self._t0 = 0.0
        self.result: dict = {}

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_rss = max(self.peak_rss, rss_bytes(self.pid))

    def start(self) -> "ResourceMonitor":
        if self.pid is None:
            return self
        self.peak_rss = rss_bytes(self.pid)
        self._cpu0, self._t0 = cpu_seconds(self.pid), time.perf_counter()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict:
        if self.pid is None:
            self.result = {"cpu_percent": None, "peak_rss_mb": None, "rss_end_mb": None}
            return self.result
        self._stop.set()
        self._thread.join()
        wall = time.perf_counter() - self._t0
        cpu = cpu_seconds(self.pid) - self._cpu0
        end_rss = rss_bytes(self.pid)
        self.result = {"cpu_percent": 100.0 * cpu / wall if wall else None,
                       "peak_rss_mb": max(self.peak_rss, end_rss) / 2**20,
                       "rss_end_mb": end_rss / 2**20}
        return self.result


@dataclass
class ServerProcess:
    """A server started as a subprocess; `ready` is polled until it returns True."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    port: int | None = None
    process: subprocess.Popen | None = None

    def start(self, ready, timeout_s: float = 180.0) -> "ServerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(self.command, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
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
