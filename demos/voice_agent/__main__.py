"""A voice agent loop on streamscribe's events: turn-taking, spoken replies, barge-in.

    python -m demos.voice_agent                    # a scripted caller (corpus speech) talks to the agent
    python -m demos.voice_agent --mic --play       # you talk to it (use headphones)
    python -m demos.voice_agent question.wav       # a recording plays the caller
    python -m demos.voice_agent --agent mypkg.bot:reply   # plug in any LLM: reply(text, history) -> str

The user's final (end of utterance) ends their turn; the agent answers with speech synthesized
by espeak-ng; if the user starts talking while the agent speaks (`SpeechStarted`), the agent
stops at once (barge-in). Agent speech is played on the stream's clock, positioned by sample
counts of the synthesized audio (`--play` also sends it to the sound card).
In the scripted run the caller's second utterance starts `--barge-in-after` seconds into the
agent's first reply, so the barge-in is shown every time.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from pathlib import Path
from typing import AsyncIterator, Callable

import numpy as np

from clients import SpeechStarted, StreamClient, StreamOptions, Transcript, UtteranceEnd

from ..server import demo_server, ws_url
from .tts import espeak
from .turns import EchoAgent, FunctionAgent, Speak, StopSpeaking, TurnTaker

RATE = 16_000
CHUNK = RATE // 20                  # 50 ms of user audio per frame
SCRIPT = ("en_ls_1089-134691-0001", "en_lj_LJ001-0008")   # what the scripted caller says


def clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


class Conversation:
    """The running session: the user-audio clock, the turn taker, output, recording."""

    def __init__(self, taker: TurnTaker, *, out=None, player=None) -> None:
        self.taker = taker
        self.out = out or sys.stdout
        self.player = player
        self.sent = 0                              # user samples sent: the clock
        self.wall_start: float | None = None       # loop time of sample 0, for pacing
        self.script: list[float] = []              # scripted caller: when each utterance began
        self.user_audio: list[np.ndarray] = []
        self.playbacks: list = []                  # every reply started
        self.cut: dict[int, int] = {}              # id(playback) -> samples played before a stop
        self._shown = 0

    @property
    def now(self) -> float:
        return self.sent / RATE

    def log(self, at: float, who: str, text: str) -> None:
        print(f"{clock(at)}  {who:<5}  {text}", file=self.out, flush=True)

    def handle(self, actions: list) -> None:
        for action in actions:
            p = action.playback
            if isinstance(action, Speak):
                self.playbacks.append(p)
                self.log(p.started_at, "agent", f"▶ {p.text}  ({p.duration:.1f} s of speech)")
                if self.player:
                    self.player.play(p.samples, p.rate)
            elif isinstance(action, StopSpeaking):
                self.cut[id(p)] = action.played_samples
                if self.player:
                    self.player.stop()
                turn = self.taker.turns[-1]
                self.log(self.now, "agent", f"■ stopped: barge-in at {clock(turn.barge_in_at)}, "
                         f"{turn.played_s:.1f} s of {turn.speech_s:.1f} s played")
        for turn in self.taker.turns[self._shown:]:       # replies completed by the clock
            if turn.role == "agent" and not turn.interrupted:
                self.log(turn.end, "agent", "✓ finished speaking")
        self._shown = len(self.taker.turns)

    def sent_audio(self, chunk: np.ndarray) -> None:
        self.sent += len(chunk)
        self.user_audio.append(chunk)
        self.handle(self.taker.tick(self.now))

    def recording(self) -> np.ndarray:
        """Stereo 16 kHz: the caller (left) and what was played of the agent (right)."""
        from streaming.audio import Resampler

        user = np.concatenate(self.user_audio) if self.user_audio else np.zeros(0, np.int16)
        agent = np.zeros_like(user)
        for p in self.playbacks:
            heard = p.samples[:self.cut.get(id(p), p.played_samples(self.now))]
            resampler = Resampler(p.rate)
            audio = np.concatenate([resampler.feed(heard), resampler.flush()])
            at = int(p.started_at * RATE)
            audio = audio[:max(0, len(agent) - at)]
            agent[at:at + len(audio)] = audio
        return np.stack([user, agent], axis=1)


async def run(url: str, chunks: Callable[["Conversation"], AsyncIterator[np.ndarray]],
              conversation: Conversation, *, language: str = "en", token: str | None = None) -> None:
    """Stream the user's audio, feed every event to the turn taker, act on what it decides."""
    taker = conversation.taker
    options = StreamOptions(encoding="linear16", sample_rate=RATE, channels=1, interim_results=False,
                            vad_events=True, utterance_end_ms=1000, language=language)
    async with StreamClient(ws_url(url), options, token=token, close_timeout=60) as conn:
        async def send() -> None:
            async for chunk in chunks(conversation):
                await conn.send(chunk.astype("<i2").tobytes())
                conversation.sent_audio(chunk)
            await conn.close()

        sender = asyncio.create_task(send())
        try:
            async for event in conn:
                now = conversation.now
                if isinstance(event, SpeechStarted):
                    conversation.log(event.timestamp, "user", "… speaking")
                    conversation.handle(taker.on_speech_started(event.timestamp, now))
                elif isinstance(event, Transcript) and event.is_final:
                    if event.text.strip():
                        conversation.log(now, "user", f"“{event.text.strip()}”  (said "
                                         f"{clock(event.start)}–{clock(event.end)})")
                    conversation.handle(taker.on_final(event, now))
                elif isinstance(event, UtteranceEnd):
                    conversation.handle(taker.on_utterance_end(now))
        except BaseException:
            sender.cancel()
            raise
        await sender       # it ends with close(): the server's Metadata came, the stream is done


async def paced(conversation: Conversation, audio: np.ndarray, speed: float) -> AsyncIterator[np.ndarray]:
    """`audio` in 50 ms chunks, each sent when it would have been captured (at `speed`)."""
    loop = asyncio.get_running_loop()
    for start in range(0, len(audio), CHUNK):
        chunk = audio[start:start + CHUNK]
        if speed > 0:
            if conversation.wall_start is None:
                conversation.wall_start = loop.time() - conversation.now / speed
            delay = conversation.wall_start + (conversation.now + len(chunk) / RATE) / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        yield chunk


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.int16)


def scripted_caller(utterances: list[np.ndarray], *, barge_in_after: float, speed: float,
                    patience: float = 30.0):
    """A caller who says utterance 1, waits for the reply, talks over it after
    `barge_in_after` s with utterance 2, then listens to the second reply to its end."""

    async def chunks(conversation: Conversation) -> AsyncIterator[np.ndarray]:
        taker = conversation.taker
        async for c in paced(conversation, silence(0.5), speed):
            yield c
        for index, utterance in enumerate(utterances):
            conversation.script.append(round(conversation.now, 3))
            async for c in paced(conversation, utterance, speed):
                yield c
            # silence until the agent answers (stream time, bounded)
            waited = 0.0
            agent_turns = sum(t.role == "agent" for t in taker.turns)
            while taker.state != "speaking" and waited < patience:
                if sum(t.role == "agent" for t in taker.turns) > agent_turns:
                    break                      # it answered and finished already
                async for c in paced(conversation, silence(0.1), speed):
                    yield c
                waited += 0.1
            if index + 1 < len(utterances):
                async for c in paced(conversation, silence(barge_in_after), speed):
                    yield c
        waited = 0.0
        while taker.state == "speaking" and waited < patience:
            async for c in paced(conversation, silence(0.1), speed):
                yield c
            waited += 0.1
        async for c in paced(conversation, silence(0.5), speed):
            yield c

    return chunks


def file_caller(audio: np.ndarray, *, speed: float, patience: float = 15.0):
    async def chunks(conversation: Conversation) -> AsyncIterator[np.ndarray]:
        async for c in paced(conversation, audio, speed):
            yield c
        waited = 0.0
        while waited < 2.0 or (conversation.taker.state == "speaking" and waited < patience):
            async for c in paced(conversation, silence(0.1), speed):
                yield c
            waited += 0.1
    return chunks


def mic_caller(device=None, duration: float | None = None):
    """The microphone is the caller (16 kHz, resampled if the device will not open at it)."""
    async def chunks(conversation: Conversation) -> AsyncIterator[np.ndarray]:
        from clients.mic import Microphone
        from streaming.audio import Resampler

        async with Microphone(device, samplerate=RATE) as mic:
            resampler = Resampler(mic.samplerate)      # a no-op when the device opened at 16 kHz
            print("listening; talk to the agent (Ctrl-C to stop)", file=sys.stderr, flush=True)
            async for block in mic:
                yield resampler.feed(np.frombuffer(block, dtype="<i2"))
                if duration is not None and mic.seconds >= duration:
                    break
    return chunks


class SoundCardPlayer:
    """Plays agent speech on the default output device (sounddevice); stop() cuts it."""

    def __init__(self) -> None:
        import sounddevice

        self.sd = sounddevice

    def play(self, samples: np.ndarray, rate: int) -> None:
        self.sd.play(samples, rate)

    def stop(self) -> None:
        self.sd.stop()


def load_agent(spec: str | None):
    if not spec:
        return EchoAgent()
    module, _, name = spec.partition(":")
    fn = getattr(importlib.import_module(module), name or "respond")
    return fn() if isinstance(fn, type) else FunctionAgent(fn)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demos.voice_agent",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", help="a recording that plays the caller")
    parser.add_argument("--mic", action="store_true", help="you are the caller (microphone)")
    parser.add_argument("--device", help="--mic: input device (see `streamscribe mic --list-devices`)")
    parser.add_argument("--play", action="store_true", help="play the agent's voice on the sound card")
    parser.add_argument("--agent", help="module:function(text, history) -> reply (default: echo agent)")
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice (default en-us)")
    parser.add_argument("--barge-in-after", type=float, default=1.0,
                        help="scripted caller: seconds into the first reply to talk over it")
    parser.add_argument("--speed", type=float, default=1.0, help="caller audio pace (1 = real time)")
    parser.add_argument("--duration", type=float, help="--mic: stop after this many seconds")
    parser.add_argument("--json", help="write the turns (and the script) as JSON here")
    parser.add_argument("--record", help="write a stereo WAV here: caller left, agent right")
    parser.add_argument("--url", help="server (default: 127.0.0.1:8000 if running, else start one)")
    parser.add_argument("--language", default="en")
    parser.add_argument("--token", help="API key, when the server requires one")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    taker = TurnTaker(load_agent(args.agent), lambda text: espeak(text, voice=args.voice))
    conversation = Conversation(taker, player=SoundCardPlayer() if args.play else None)
    if args.mic:
        chunks = mic_caller(args.device, duration=args.duration)
    elif args.file:
        from clients.file_stream import read_audio
        from streaming.audio import Resampler

        samples, rate = read_audio(args.file)
        mono = samples.mean(axis=1).astype(np.int16)
        resampler = Resampler(rate)
        chunks = file_caller(np.concatenate([resampler.feed(mono), resampler.flush()]), speed=args.speed)
    else:
        from streaming.eval.corpus import item

        chunks = scripted_caller([item(i).mono16k() for i in SCRIPT],
                                 barge_in_after=args.barge_in_after, speed=args.speed)
    with demo_server(args.url) as url:
        try:
            asyncio.run(run(url, chunks, conversation, language=args.language, token=args.token))
        except KeyboardInterrupt:
            pass
    if args.json:
        Path(args.json).write_text(json.dumps({
            "turns": [t.to_json() for t in taker.turns],
            "script": {"utterance_starts": conversation.script or None,
                       "barge_in_after": args.barge_in_after}}, indent=2) + "\n")
    if args.record:
        from streaming.audio import wav_bytes

        Path(args.record).write_bytes(wav_bytes(conversation.recording()))
    roles = " → ".join(("agent (interrupted)" if t.interrupted else t.role) for t in taker.turns)
    print(f"turns: {roles}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
