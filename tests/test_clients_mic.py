"""`streamscribe mic` through a virtual microphone: the real PortAudio -> ALSA -> PulseAudio path.

A private PulseAudio daemon (its own runtime directory, no hardware modules) gets a null
sink; its monitor is the default source. `paplay` plays a corpus clip into the sink while
`streamscribe mic` (a subprocess, so PortAudio initializes against that daemon) captures
the monitor and streams it to the test server.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys

from streaming.eval import corpus
from streaming.eval.scoring import error_rate

from .conftest import timeout
from .virtual_mic import REPO, capturing, play

CLIP = "en_lj_LJ001-0009"        # 7.6 s, LJ Speech


def test_mic_client_captions_speech_played_into_a_virtual_source(server, pulse_env):
    item = corpus.item(CLIP)
    with capturing(["streaming.cli", "mic", "--url", server.ws_url, "--language", "en"],
                   pulse_env) as mic:
        play(item.audio, pulse_env, item.duration_s)
        mic.process.send_signal(signal.SIGINT)     # Ctrl-C: flush the last utterance, exit 0
        out = mic.finish(60)
    assert mic.process.returncode == 0, mic.errors
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines and all(re.match(r"\[\d\d:\d\d\.\d\] ", line) for line in lines), out
    text = " ".join(line.split("] ", 1)[1] for line in lines)
    wer = error_rate(item.references(), text)
    assert wer < 0.15, (wer, text, mic.errors)


def test_list_devices_shows_the_pulse_device(pulse_env):
    result = subprocess.run([sys.executable, "-m", "streaming.cli", "mic", "--list-devices"],
                            cwd=REPO, env=pulse_env, capture_output=True, text=True,
                            timeout=timeout(30))
    assert result.returncode == 0, result.stderr
    assert "pulse" in result.stdout, result.stdout
