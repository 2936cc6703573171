"""The browser caption page in real headless Chromium (Debian's), driven by Playwright.

Chromium's fake media flags play a corpus WAV as the microphone; the page captures it with an
AudioWorklet, streams 16 kHz PCM16 to /v1/listen and must show the speech's transcript.
Screenshots land in tests/output/.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import numpy as np
import pytest

from streaming.audio import wav_bytes
from streaming.eval.corpus import item
from streaming.eval.scoring import error_rate

from .conftest import timeout

CHROMIUM = os.environ.get("STREAMSCRIBE_CHROMIUM", "/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parent / "output"
CLIPS = ["en_lj_LJ001-0002", "en_ls_1089-134686-0000"]
RATE = 16_000

# A core feature: no silent skip. Without Chromium the browser fixture fails, saying why.


def speech_file() -> tuple[Path, float]:
    """Two corpus utterances with pauses, as the fake microphone's WAV."""
    silence = lambda s: np.zeros(int(s * RATE), np.int16)  # noqa: E731
    audio = np.concatenate([silence(0.8), item(CLIPS[0]).mono16k(), silence(1.5),
                            item(CLIPS[1]).mono16k(), silence(2.0)])
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / "fake_microphone.wav"
    path.write_bytes(wav_bytes(audio))
    return path, len(audio) / RATE


def chromium_args(wav: Path) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}%noloop",
            "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
async def browser():
    from playwright.async_api import async_playwright

    wav, duration = speech_file()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=chromium_args(wav),
                                          headless=True)
        browser.audio_seconds = duration
        yield browser
        await browser.close()


async def test_page_captions_the_microphone(server, browser):
    page = await browser.new_page(viewport={"width": 1100, "height": 720})
    console = []
    page.on("console", lambda m: console.append(m.text))
    received: list[dict] = []              # what the server sent, as the page's socket saw it
    page.on("websocket", lambda ws: ws.on("framereceived",
                                          lambda payload: received.append(json.loads(payload))))
    await page.goto(server.http_url + "/")
    assert await page.title() == "streamscribe — live captions"
    assert await page.locator("#token-field").is_hidden()      # no keys configured
    assert "base" in await page.locator("#model").inner_text()
    assert await page.input_value("#language") == "multi"     # auto-detect by default
    await page.click("#toggle")
    started = asyncio.get_running_loop().time()
    await page.wait_for_function("window.streamscribe.state === 'live'", timeout=timeout(20) * 1000)

    # The partial line is styled lighter than finals.
    assert await page.eval_on_selector("#partial", "e => getComputedStyle(e).fontStyle") == "italic"
    # For README: one final committed, the next utterance's partial below it. Under load the
    # server may shed partials, so this picture is taken only if that moment comes.
    live_moment = ("window.streamscribe.finals.length >= 1 && "
                   "document.querySelector('#partial').textContent.length > 20")
    await page.wait_for_function(f"({live_moment}) || window.streamscribe.finals.length >= {len(CLIPS)}",
                                 timeout=timeout(browser.audio_seconds + 30) * 1000)
    if await page.evaluate(live_moment):
        await page.screenshot(path=str(OUTPUT / "caption_page_live.png"))
    await page.wait_for_function(f"window.streamscribe.finals.length >= {len(CLIPS)}",
                                 timeout=timeout(browser.audio_seconds + 30) * 1000)
    await page.screenshot(path=str(OUTPUT / "caption_page.png"))
    # the fake microphone plays in real time: let it finish before Stop
    await asyncio.sleep(max(0.0, started + browser.audio_seconds + 0.5 - asyncio.get_running_loop().time()))
    await page.click("#toggle")                                  # Stop: CloseStream, then Metadata
    await page.wait_for_function("window.streamscribe.state === 'idle'", timeout=timeout(20) * 1000)

    caption = await page.evaluate("window.streamscribe")
    assert caption["error"] is None, (caption["error"], console)
    # Every partial with text that arrived was shown (how many arrive is the server's choice:
    # partials are shed under load).
    partials = [m for m in received if m.get("type") == "Results" and not m["is_final"]
                and m["channel"]["alternatives"][0]["transcript"].strip()]
    assert caption["partials"] == len(partials)
    assert caption["metadata"]["type"] == "Metadata"
    finals = caption["finals"]
    text = " ".join(f["text"] for f in finals)
    references = [" ".join(item(c).text for c in CLIPS)]
    wer = error_rate(references, text)
    print(f"page transcript (WER {wer:.3f}): {text}")
    assert wer < 0.15, text
    assert [f["start"] for f in finals] == sorted(f["start"] for f in finals)
    assert finals[0]["start"] >= 0.3 and finals[-1]["end"] <= browser.audio_seconds + 0.5
    assert all(f["language"] == "en" for f in finals)
    # the latency readout uses the server's latency_ms
    assert all(isinstance(f["latencyMs"], (int, float)) and f["latencyMs"] >= 0 for f in finals)
    assert "median" in await page.inner_text("#latency")
    assert await page.inner_text("#lang") == "en"             # detected
    shown = await page.locator("#finals .final").count()
    assert shown == len(finals)
    assert (await page.locator("#finals .final time").first.inner_text()).startswith("00:0")

    # Downloads: srt and vtt with the finals' times.
    async with page.expect_download() as info:
        await page.click(".downloads button[data-format=srt]")
    srt = Path(await (await info.value).path()).read_text()
    assert srt.startswith("1\n00:00:0") and " --> " in srt and finals[0]["text"] in srt
    async with page.expect_download() as info:
        await page.click(".downloads button[data-format=vtt]")
    vtt = Path(await (await info.value).path()).read_text()
    assert vtt.startswith("WEBVTT\n\n00:00:0") and finals[-1]["text"] in vtt
    async with page.expect_download() as info:
        await page.click(".downloads button[data-format=txt]")
    txt = Path(await (await info.value).path()).read_text()
    assert txt.splitlines()[0].startswith("[00:0")
    await page.close()


async def test_page_captions_a_chosen_file(server, browser):
    clip = item("en_ls_1089-134691-0000")            # "He could wait no longer", 2 s
    path = OUTPUT / "chosen_file.wav"
    path.write_bytes(wav_bytes(np.concatenate([np.zeros(RATE // 2, np.int16), clip.mono16k(),
                                               np.zeros(RATE, np.int16)])))
    page = await browser.new_page()
    await page.goto(server.http_url + "/?language=en")
    await page.set_input_files("#file", str(path))
    await page.wait_for_function("window.streamscribe.state === 'live'", timeout=timeout(20) * 1000)
    assert "chosen_file.wav" in await page.inner_text("#source")
    # the end of the file stops the stream by itself
    await page.wait_for_function("window.streamscribe.state === 'idle'", timeout=timeout(40) * 1000)
    caption = await page.evaluate("window.streamscribe")
    assert caption["error"] is None and caption["metadata"]["type"] == "Metadata"
    text = " ".join(f["text"] for f in caption["finals"])
    assert error_rate(clip.references(), text) < 0.15, text
    await page.close()


async def test_page_over_openais_realtime_protocol(server, browser):
    """The page speaks OpenAI's realtime protocol: base64 PCM resampled to 24 kHz in the
    page, server VAD; Stop (here: the end of the file) commits, and the page closes once
    every item has completed."""
    clip = item("en_ls_1089-134686-0000")
    path = OUTPUT / "chosen_file_openai.wav"
    path.write_bytes(wav_bytes(np.concatenate([np.zeros(RATE // 2, np.int16), clip.mono16k(),
                                               np.zeros(RATE, np.int16)])))
    page = await browser.new_page()
    received: list[dict] = []
    page.on("websocket", lambda ws: ws.on("framereceived",
                                          lambda payload: received.append(json.loads(payload))))
    await page.goto(server.http_url + "/?language=en&protocol=openai")
    assert await page.input_value("#protocol") == "openai"
    await page.set_input_files("#file", str(path))
    await page.wait_for_function("window.streamscribe.state === 'live'", timeout=timeout(20) * 1000)
    await page.wait_for_function("window.streamscribe.state === 'idle'", timeout=timeout(60) * 1000)
    caption = await page.evaluate("window.streamscribe")
    assert caption["error"] is None and caption["metadata"]["type"] == "Metadata"
    types = {m["type"] for m in received}
    assert {"session.created", "session.updated", "input_audio_buffer.speech_started",
            "conversation.item.input_audio_transcription.completed"} <= types, types
    text = " ".join(f["text"] for f in caption["finals"])
    assert error_rate(clip.references(), text) < 0.15, text
    assert all(f["language"] == "en" and f["start"] >= 0.3 for f in caption["finals"])
    await page.close()


async def test_page_on_a_phone_and_with_keys(start_server, browser):
    server = start_server(api_keys=("page-key",))
    context = await browser.new_context(viewport={"width": 390, "height": 760},
                                        device_scale_factor=2, is_mobile=True, has_touch=True)
    page = await context.new_page()
    await page.goto(server.http_url + "/")
    await page.wait_for_selector("#token-field", state="visible")
    # Nothing is wider than the phone's screen.
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    await page.click("#toggle")                                  # no key: a clear error
    await page.wait_for_function("window.streamscribe.state === 'error'", timeout=timeout(20) * 1000)
    assert "API key" in await page.inner_text("#error")
    await page.fill("#token", "page-key")
    await page.click("#toggle")
    await page.wait_for_function("window.streamscribe.state === 'live'", timeout=timeout(20) * 1000)
    assert await page.locator("#model").is_hidden()          # while live, captions get the room
    await page.click("#toggle")
    await page.wait_for_function("window.streamscribe.state === 'idle'", timeout=timeout(20) * 1000)
    assert await page.evaluate("window.streamscribe.error") is None
    assert await page.locator("#model").is_visible()
    await page.screenshot(path=str(OUTPUT / "caption_page_phone.png"))
    await context.close()
