"""Live captions from the microphone: sounddevice capture -> `/v1/listen` -> terminal.

    await run_mic("ws://127.0.0.1:8000", options=StreamOptions(language="en"))

Capture runs on PortAudio's thread; its callback only copies the block and hands it to the
event loop (`call_soon_threadsafe`), so nothing blocks the loop and the loop never blocks
capture. If the loop falls behind, the oldest blocks beyond `max_queue_s` are dropped and
reported (AudioLost, reason "overflow") rather than lost silently. The stream is a
`ResilientStream`, so a server restart costs a reconnect, not the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
from types import ModuleType
from typing import Any, AsyncIterator, TextIO

from .captions import CaptionPrinter
from .events import AudioLost
from .options import StreamOptions
from .resilient import Backoff, ResilientStream

__all__ = ["Microphone", "list_devices", "run_mic"]

SAMPLE_RATE = 16000
BLOCK_MS = 50
# After Ctrl-C, how long the last utterance's final may take: it is transcribed only then,
# behind whatever the server is doing, and on a slow or busy server that is more than the
# connection's usual 10 s. A second Ctrl-C stops waiting.
FLUSH_WAIT_S = 30.0


def _sounddevice() -> ModuleType:
    try:
        return importlib.import_module("sounddevice")
    except OSError as exc:   # the PortAudio shared library is missing
        raise RuntimeError(f"{exc}: install PortAudio (Debian: apt-get install libportaudio2)") from exc


def list_devices() -> str:
    """The input devices, one per line: index, name, host API, channels, default rate."""
    sd = _sounddevice()
    default_input = sd.default.device[0] if sd.default.device else -1
    apis = sd.query_hostapis()
    lines = []
    for index, device in enumerate(sd.query_devices()):
        if device["max_input_channels"] <= 0:
            continue
        mark = "*" if index == default_input else " "
        lines.append(f"{mark}{index:3d}  {device['name']}  ({apis[device['hostapi']]['name']}, "
                     f"{device['max_input_channels']} in, {device['default_samplerate']:.0f} Hz)")
    return "\n".join(lines) if lines else "no input devices found"


def _device(value: str | int | None) -> str | int | None:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


class Microphone:
    """16-bit mono capture as an async iterator of PCM byte blocks.

    Opens at `samplerate` (16 kHz) when the device allows it, else at the device's default
    rate (the server resamples): `self.samplerate` says which. `lost` collects AudioLost
    reports for blocks dropped because the consumer fell behind; `take_lost()` drains it.
    """

    def __init__(self, device: str | int | None = None, *, samplerate: int = SAMPLE_RATE,
                 block_ms: int = BLOCK_MS, max_queue_s: float = 5.0) -> None:
        self.device = _device(device)
        self.samplerate = samplerate
        self.block_ms = block_ms
        self.max_queue_s = max_queue_s
        self.captured_frames = 0       # every frame PortAudio delivered, dropped ones included
        self.input_overflows = 0       # PortAudio's own overflow flags (frames lost in the driver)
        self.lost: list[AudioLost] = []
        # None ends the blocks (stop()).
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(
            maxsize=max(1, int(max_queue_s * 1000 / block_ms)))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stream: Any = None            # sounddevice.RawInputStream, while open

    def _open(self, sd: ModuleType, rate: int) -> Any:
        return sd.RawInputStream(samplerate=rate, blocksize=int(rate * self.block_ms / 1000),
                                 device=self.device, channels=1, dtype="int16",
                                 callback=self._callback)

    async def __aenter__(self) -> "Microphone":
        sd = _sounddevice()
        self._loop = asyncio.get_running_loop()
        try:
            try:
                self._stream = self._open(sd, self.samplerate)
            except sd.PortAudioError:      # 16 kHz refused: capture at the device's own rate
                info = sd.query_devices(self.device, "input")
                self.samplerate = int(info["default_samplerate"])
                self._stream = self._open(sd, self.samplerate)
        except (sd.PortAudioError, ValueError) as exc:
            which = "the default input" if self.device is None else f"input device {self.device!r}"
            raise RuntimeError(f"cannot open {which}: {exc} (see `streamscribe mic "
                               "--list-devices`)") from exc
        self._stream.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.stop()       # waits for a running callback; none comes after it
            stream.close()
            if self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(None)

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        # PortAudio's thread: copy and hand over, nothing else.
        assert self._loop is not None, "PortAudio calls back only after __aenter__"
        try:
            self._loop.call_soon_threadsafe(self._put, bytes(indata), frames,
                                            bool(status.input_overflow))
        except RuntimeError:    # the loop is closing; stop() is on its way
            pass

    def _put(self, data: bytes, frames: int, overflow: bool) -> None:
        start = self.captured_frames / self.samplerate
        self.captured_frames += frames
        if overflow:
            self.input_overflows += 1
        if self._queue.full():
            self.lost.append(AudioLost(start=start, duration=frames / self.samplerate,
                                       reason="overflow"))
            return
        self._queue.put_nowait(data)

    def take_lost(self) -> list[AudioLost]:
        lost, self.lost = self.lost, []
        return lost

    @property
    def seconds(self) -> float:
        return self.captured_frames / self.samplerate

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        block = await self._queue.get()
        if block is None:
            raise StopAsyncIteration
        return block


async def _show_events(stream: ResilientStream, printer: CaptionPrinter) -> None:
    async for event in stream:
        printer.show(event)


async def run_mic(url: str, *, device: str | int | None = None,
                  options: StreamOptions | None = None, duration: float | None = None,
                  printer: CaptionPrinter | None = None, out: TextIO | None = None,
                  backoff: Backoff = Backoff(), ready: TextIO | None = None,
                  **connect_kwargs: Any) -> CaptionPrinter:
    """Capture, stream and print captions until cancelled (Ctrl-C) or `duration` seconds of
    audio were captured; then flush the last utterance and return the printer (its
    `finals` hold the committed lines). `connect_kwargs` go to `connect()` (token, ...).
    `ready` gets one line once capture and connection are both up.
    """
    printer = printer or CaptionPrinter(out)
    options = options or StreamOptions()
    async with Microphone(device) as mic:
        options = options.replace(encoding="linear16", sample_rate=mic.samplerate, channels=1)
        connect_kwargs.setdefault("close_timeout", FLUSH_WAIT_S)
        stream = await ResilientStream(url, options, backoff=backoff, **connect_kwargs).start()
        shower = asyncio.create_task(_show_events(stream, printer))
        if ready is not None:
            print(f"listening at {mic.samplerate} Hz; Ctrl-C to stop", file=ready, flush=True)
        try:
            async for block in mic:
                await stream.send(block)
                for lost in mic.take_lost():
                    printer.show(lost)
                if duration is not None and mic.seconds >= duration:
                    break
        finally:
            mic.stop()
            for lost in mic.take_lost():
                printer.show(lost)
            with contextlib.suppress(Exception):
                await asyncio.shield(stream.close())
            with contextlib.suppress(Exception):
                await asyncio.wait_for(shower, 15)
    return printer


def main_mic(url: str, **kwargs: Any) -> int:
    """Blocking entry point for the CLI; Ctrl-C ends the session cleanly."""
    try:
        asyncio.run(run_mic(url, ready=sys.stderr, **kwargs))
    except KeyboardInterrupt:
        pass
    return 0
