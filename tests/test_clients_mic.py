"""`streamscribe mic` through a virtual microphone: the real PortAudio -> ALSA -> PulseAudio path.

A private PulseAudio daemon (its own runtime directory, no hardware modules) gets a null
sink; its monitor is the default source. `paplay` plays a corpus clip into the sink while
`streamscribe mic` (a subprocess, so PortAudio initializes against that daemon) captures
the monitor and streams it to the test server.
"""

from __future__ import annotations

import os
import re
import signal
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench import corpus
from bench.scoring import error_rate

from .conftest import timeout

REPO = Path(__file__).resolve().parent.parent
SINK = "streamscribe_mic"
CLIP = "en_lj_LJ001-0009"        # 7.6 s, LJ Speech


def _wait_for(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def pulse_env(tmp_path_factory):
    """Environment variables that point PulseAudio clients at a private daemon."""
    if not shutil.which("pulseaudio") or not shutil.which("pactl"):
        pytest.skip("PulseAudio is not installed (bash .ci/setup install adds it)")
    runtime = tmp_path_factory.mktemp("pulse")
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
            daemon.terminate()
            raise RuntimeError("PulseAudio did not start: "
                               + (runtime / "pulseaudio.log").read_text(errors="replace")[-2000:])
        subprocess.run(["pactl", "set-default-source", f"{SINK}.monitor"], env=env, check=True)
        yield env
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        log.close()


def test_mic_client_captions_speech_played_into_a_virtual_source(server, pulse_env):
    item = corpus.item(CLIP)
    listening = threading.Event()
    errors: list[str] = []
    mic = subprocess.Popen(
        [sys.executable, "-m", "streaming.cli", "mic", "--url", server.ws_url,
         "--language", "en"],
        cwd=REPO, env=pulse_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def read_stderr() -> None:
        for line in mic.stderr:
            errors.append(line)
            if line.startswith("listening"):
                listening.set()

    threading.Thread(target=read_stderr, daemon=True).start()
    try:
        assert listening.wait(timeout(30)), "".join(errors)
        subprocess.run(["paplay", f"--device={SINK}", str(item.audio)], env=pulse_env,
                       check=True, timeout=timeout(item.duration_s + 15))
        mic.send_signal(signal.SIGINT)             # Ctrl-C: flush the last utterance, exit 0
        out, _ = mic.communicate(timeout=timeout(60))
    finally:
        if mic.poll() is None:
            mic.kill()
    assert mic.returncode == 0, "".join(errors)
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines and all(re.match(r"\[\d\d:\d\d\.\d\] ", line) for line in lines), out
    text = " ".join(line.split("] ", 1)[1] for line in lines)
    wer = error_rate(item.references(), text)
    assert wer < 0.15, (wer, text, "".join(errors))


def test_list_devices_shows_the_pulse_device(pulse_env):
    result = subprocess.run([sys.executable, "-m", "streaming.cli", "mic", "--list-devices"],
                            cwd=REPO, env=pulse_env, capture_output=True, text=True,
                            timeout=timeout(30))
    assert result.returncode == 0, result.stderr
    assert "pulse" in result.stdout, result.stdout
