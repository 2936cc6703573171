"""A virtual microphone for tests: a private PulseAudio daemon whose null sink's monitor is the
default source, and helpers to run a capturing program and play a clip into it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .conftest import ctrl_c_reaches_child, timeout

REPO = Path(__file__).resolve().parent.parent
SINK = "streamscribe_mic"


def _wait_for(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


@contextmanager
def pulse_daemon(runtime: Path):
    """Yield environment variables that point PulseAudio clients at a private daemon."""
    if not shutil.which("pulseaudio") or not shutil.which("pactl"):
        raise RuntimeError("PulseAudio is not installed: run `bash .ci/setup install`")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(runtime),
           "PULSE_RUNTIME_PATH": str(runtime / "pulse"),
           "PULSE_SERVER": f"unix:{runtime / 'pulse' / 'native'}",
           "PULSE_SOURCE": f"{SINK}.monitor", "PULSE_SINK": SINK}
    # -n: no default.pa (no hardware probing); root needs no special mode with its own paths.
    log = open(runtime / "pulseaudio.log", "wb")
    daemon = subprocess.Popen(
        ["pulseaudio", "--daemonize=no", "-n", "--exit-idle-time=-1", "--disallow-exit",
         "--use-pid-file=no", "--log-target=stderr",
         "--load=module-native-protocol-unix auth-anonymous=1",
         f"--load=module-null-sink sink_name={SINK} rate=16000 channels=1"],
        env=env, stdout=subprocess.DEVNULL, stderr=log)

    def ready() -> bool:
        return subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0

    try:
        if not _wait_for(ready, timeout(15)):
            raise RuntimeError("PulseAudio did not start: "
                               + (runtime / "pulseaudio.log").read_text(errors="replace")[-2000:])
        subprocess.run(["pactl", "set-default-source", f"{SINK}.monitor"], env=env, check=True)
        yield env
    finally:
        daemon.terminate()
        daemon.wait(timeout=timeout(10))
        log.close()


class Captured:
    """A running capture program; its stdout and stderr are read by threads as they come."""

    def __init__(self, args: list[str], env: dict) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=REPO, env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=ctrl_c_reaches_child)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.listening = threading.Event()
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.process.stdout, self.stdout),
                                               (self.process.stderr, self.stderr))]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)
            if line.startswith("listening"):
                self.listening.set()

    def finish(self, seconds: float) -> str:
        """Wait for the program to exit; return everything it printed on stdout."""
        try:
            self.process.wait(timeout=timeout(seconds))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.process.args} did not exit within {timeout(seconds):.0f} s;"
                                 f" stdout: {''.join(self.stdout)!r}; stderr: {self.errors}") from None
        for reader in self._readers:
            reader.join(timeout=timeout(5))
        return "".join(self.stdout)

    @property
    def errors(self) -> str:
        return "".join(self.stderr)


@contextmanager
def capturing(args: list[str], env: dict):
    """Run `python -m ARGS` until it says "listening" on stderr; kill it if the test fails."""
    captured = Captured(args, env)
    try:
        assert captured.listening.wait(timeout(30)), captured.errors
        yield captured
    finally:
        if captured.process.poll() is None:
            captured.process.kill()


def play(path: Path, env: dict, seconds: float) -> None:
    """Play a WAV into the virtual microphone, to its end."""
    subprocess.run(["paplay", f"--device={SINK}", str(path)], env=env, check=True,
                   timeout=timeout(seconds + 15))
