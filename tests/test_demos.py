"""The demos, each run as its README command (a subprocess) against the shared test server."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from streaming.audio import wav_bytes
from streaming.eval.corpus import item
from streaming.eval.scoring import error_rate

from .conftest import timeout

REPO = Path(__file__).resolve().parent.parent
CALL_ID = "2spk_en_constructed_dialogue_dualchannel"


def run_demo(*args: str, seconds: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, text=True,
                            capture_output=True, timeout=timeout(seconds))
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.parametrize("via", ["listen", "twilio"])
def test_call_center_writes_a_per_speaker_conversation(server, tmp_path, via):
    result = run_demo("demos.call_center", "--url", server.http_url, "--out", str(tmp_path),
                      *(["--twilio"] if via == "twilio" else []))
    stem = Path(item(CALL_ID).raw["audio_native"]).stem
    data = json.loads((tmp_path / f"{stem}.json").read_text())
    text = (tmp_path / f"{stem}.txt").read_text()
    assert result.stdout == text
    print(text)
    turns = data["turns"]
    assert data["via"] == via and len(text.splitlines()) == len(turns)
    labels = data["labels"]                         # speaker -> label (Caller, Agent)
    reference = item(CALL_ID).raw
    speaker_of_channel = {t["channel"]: t["speaker"] for t in turns}
    for channel in reference["channels"]:
        speaker = speaker_of_channel[channel["channel"]]
        said = " ".join(t["text"] for t in turns if t["speaker"] == speaker)
        assert error_rate(channel["text"], said) < 0.15, (speaker, said)
    starts = [t["start"] for t in turns]
    assert starts == sorted(starts)
    spoken = [k for k, _ in itertools.groupby(t["channel"] for t in turns)]
    assert spoken == [s["channel"] for s in reference["segments"]]
    assert text.splitlines()[0].startswith(f"[00:00] {labels[turns[0]['speaker']]}")
    assert all(t["words"] for t in turns)


def test_live_captions_from_a_file_in_the_terminal(server, tmp_path):
    clips = ["en_lj_LJ001-0008", "en_ls_1089-134691-0000"]
    gap = np.zeros(16000, np.int16)
    audio = np.concatenate([gap, item(clips[0]).mono16k(), gap, item(clips[1]).mono16k(), gap])
    path = tmp_path / "talk.wav"
    path.write_bytes(wav_bytes(audio))
    result = run_demo("demos.live_captions", str(path), "--url", server.http_url, "--speed", "2")
    lines = result.stdout.splitlines()
    print(result.stdout)
    assert len(lines) == 2 and all(line.startswith("[00:") for line in lines)
    said = " ".join(line.split("] ", 1)[1] for line in lines)
    assert error_rate(" ".join(item(c).text for c in clips), said) < 0.15


def test_live_captions_web_opens_the_page(server):
    import httpx

    from demos.live_captions.__main__ import main

    opened = []
    assert main(["--web", "--url", server.http_url], opener=opened.append,
                out=open(os.devnull, "w")) == 0
    assert opened == [server.http_url + "/"]
    page = httpx.get(opened[0])
    assert page.status_code == 200 and "/web/app.js" in page.text
