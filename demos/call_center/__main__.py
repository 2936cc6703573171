"""Call center: a two-channel call recording -> a per-speaker, time-ordered transcript.

    python -m demos.call_center                     # the corpus's two-speaker μ-law call
    python -m demos.call_center call.wav --speakers Agent,Customer --out transcripts/
    python -m demos.call_center --twilio            # the same call as Twilio Media Streams

Each channel is one speaker. By default the call goes to `/v1/listen` as it is recorded
(8 kHz μ-law, 2 channels) with `multichannel=true`, so each channel is transcribed on its
own; with `--twilio` it is replayed to `/v1/twilio` as Twilio would stream it (channel 0 =
inbound, channel 1 = outbound) and the transcript is read back from
`GET /v1/twilio/calls/{callSid}` while turns are shown live from the call's events socket.
Writes NAME.txt (a readable conversation) and NAME.json (turns with words) to `--out`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from pathlib import Path

import httpx
import websockets

from clients import StreamClient, StreamOptions, Transcript
from streaming.core.conversation import Conversation

from ..server import demo_server, ws_url
from .callfile import CallAudio, read_call
from .twilio_replay import replay, twilio_messages

DEFAULT_SPEAKERS = ("Caller", "Agent")


def corpus_call() -> Path:
    from streaming.eval.corpus import item

    entry = item("2spk_en_constructed_dialogue_dualchannel")
    return entry.audio.parents[2] / entry.raw["audio_native"]


async def transcribe_listen(url: str, call: CallAudio, speakers: list[str], *, language: str,
                            speed: float = 0.0, token: str | None = None, show=None) -> Conversation:
    """Stream the call to /v1/listen (multichannel) and build the conversation from its finals."""
    options = StreamOptions(encoding=call.encoding, sample_rate=call.sample_rate,
                            channels=call.channels, multichannel=True, interim_results=False,
                            language=language, vad_events=False)
    conversation = Conversation(tuple(speakers))
    bytes_per_second = call.sample_rate * call.bytes_per_frame
    # a recording sent at once may take a while to transcribe: wait for the last finals
    async with StreamClient(ws_url(url), options, token=token, close_timeout=300) as conn:
        async def send() -> None:
            step = int(call.sample_rate * 0.05) * call.bytes_per_frame     # 50 ms frames
            loop = asyncio.get_running_loop()
            started = loop.time()
            for offset in range(0, len(call.data), step):
                if speed > 0:
                    delay = started + offset / bytes_per_second / speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await conn.send(call.data[offset:offset + step])
            await conn.close()

        sender = asyncio.create_task(send())
        async for event in conn:
            if isinstance(event, Transcript) and event.is_final:
                turn = conversation.add(speakers[event.channel], event)
                if turn is not None and show is not None:
                    show(turn)
        await sender
    return conversation


async def transcribe_twilio(url: str, call: CallAudio, *, language: str, speed: float = 0.0,
                            token: str | None = None, show=None) -> Conversation:
    """Replay the call to /v1/twilio; follow its events; read the finished transcript back."""
    call_sid = "CA" + secrets.token_hex(16)
    params = {"language": language, **({"token": token} if token else {})}
    messages = list(twilio_messages(call, call_sid=call_sid, custom_parameters=params))
    query = f"?token={token}" if token else ""

    async def follow() -> None:
        async with websockets.connect(f"{ws_url(url)}/v1/twilio/calls/{call_sid}/events{query}") as ws:
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "turn" and show is not None:
                    show(Conversation.from_json({"turns": [message]}).turns[0])

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.2)
    await replay(f"{ws_url(url)}/v1/twilio{query}", messages, speed=speed)
    await asyncio.wait_for(follower, 60)
    headers = {"Authorization": f"Token {token}"} if token else {}
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(f"{url}/v1/twilio/calls/{call_sid}", headers=headers)
        response.raise_for_status()
    return Conversation.from_json(response.json())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demos.call_center",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("call", nargs="?", help="two-channel WAV, μ-law/A-law/PCM "
                        "(default: the corpus's constructed two-speaker call)")
    parser.add_argument("--speakers", default=",".join(DEFAULT_SPEAKERS),
                        help="names for channel 0, 1 (default Caller,Agent)")
    parser.add_argument("--twilio", action="store_true", help="go through /v1/twilio instead")
    parser.add_argument("--out", default="call_transcripts", help="folder for NAME.txt and NAME.json")
    parser.add_argument("--url", help="server (default: 127.0.0.1:8000 if running, else start one)")
    parser.add_argument("--language", default="en", help="ISO 639-1 code or 'multi' (default en)")
    parser.add_argument("--speed", type=float, default=0.0, help="1 = real time; 0 = as fast as possible")
    parser.add_argument("--token", help="API key, when the server requires one")
    return parser


def main(argv: list[str] | None = None, out=None) -> int:
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    path = Path(args.call) if args.call else corpus_call()
    call = read_call(path)
    if call.channels != 2:
        print(f"{path}: {call.channels} channel(s); a call needs one channel per speaker (2)",
              file=sys.stderr)
        return 2
    speakers = [s.strip() for s in args.speakers.split(",")][:2]
    labels = {"inbound": speakers[0], "outbound": speakers[1]}
    width = max(len(s) for s in speakers)

    def show(turn) -> None:
        name = labels.get(turn.speaker, turn.speaker)
        print(f"  live  [{turn.start:6.2f}s] {name:<{width}}  {turn.text}", file=sys.stderr, flush=True)

    print(f"{path.name}: {call.duration:.1f} s, {call.sample_rate} Hz {call.encoding}, "
          f"{call.channels} channels -> {'/v1/twilio' if args.twilio else '/v1/listen multichannel'}",
          file=sys.stderr)
    with demo_server(args.url) as url:
        if args.twilio:
            conversation = asyncio.run(transcribe_twilio(url, call, language=args.language,
                                                         speed=args.speed, token=args.token, show=show))
        else:
            conversation = asyncio.run(transcribe_listen(url, call, speakers, language=args.language,
                                                         speed=args.speed, token=args.token, show=show))
    text = conversation.to_text(labels)
    data = {"call": path.name, "via": "twilio" if args.twilio else "listen",
            "duration_s": round(call.duration, 3), **conversation.to_json(),
            "labels": {s: labels.get(s, s) for s in conversation.speakers}}
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{path.stem}.txt").write_text(text)
    (folder / f"{path.stem}.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    out.write(text)
    print(f"wrote {folder / (path.stem + '.txt')} and {folder / (path.stem + '.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
