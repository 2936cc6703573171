"""`streamscribe stream FILE` and `streamscribe mic`: the client subcommands.

Registered on the main parser by `add_client_commands(subparsers)`; each returns an exit
status (0 ok, 1 connection lost, 2 refused or unusable input).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any, Coroutine

from .errors import ClientError, ConnectionLost
from .options import StreamOptions

__all__ = ["add_client_commands"]

DEFAULT_URL = "ws://127.0.0.1:8000"


def _options(args: argparse.Namespace) -> StreamOptions:
    return StreamOptions(language=args.language, model=args.model,
                         interim_results=not args.no_interim, endpointing=args.endpointing,
                         multichannel=getattr(args, "multichannel", None) or None)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("STREAMSCRIBE_URL", DEFAULT_URL),
                        help=f"server (default $STREAMSCRIBE_URL or {DEFAULT_URL})")
    parser.add_argument("--language", help="ISO 639-1 code, or 'multi' to detect (default: server's, en)")
    parser.add_argument("--model", help="model on the server: base, tiny.en, ... (default: server's)")
    parser.add_argument("--token", default=os.environ.get("STREAMSCRIBE_API_KEY"),
                        help="API key when the server requires one (default $STREAMSCRIBE_API_KEY)")
    parser.add_argument("--endpointing", type=int, metavar="MS",
                        help="silence (ms) that ends an utterance (default: server's, 600)")
    parser.add_argument("--no-interim", action="store_true", help="finals only, no partials")
    parser.add_argument("--show-hallucinations", action="store_true",
                        help="also show finals the server flags as likely invented (marked ?)")


def _stream(args: argparse.Namespace) -> int:
    from .captions import CaptionPrinter, event_json
    from .file_stream import iter_file

    printer = CaptionPrinter(show_hallucinations=args.show_hallucinations,
                             show_language=args.language == "multi")

    async def run() -> None:
        async for event in iter_file(args.url, args.file, speed=args.speed, options=_options(args),
                                     chunk_ms=args.chunk_ms, token=args.token,
                                     protocol=args.protocol):
            if args.json:
                print(event_json(event), flush=True)
            else:
                printer.show(event)

    return _run(run())


def _mic(args: argparse.Namespace) -> int:
    if args.list_devices:
        from .mic import list_devices

        print(list_devices())
        return 0
    from .captions import CaptionPrinter
    from .mic import run_mic

    printer = CaptionPrinter(show_hallucinations=args.show_hallucinations,
                             show_language=args.language == "multi")
    return _run(run_mic(args.url, device=args.device, options=_options(args),
                        duration=args.duration, printer=printer, ready=sys.stderr,
                        token=args.token))


def _run(coro: Coroutine[Any, Any, object]) -> int:
    try:
        asyncio.run(coro)
    except KeyboardInterrupt:
        return 0
    except ClientError as exc:
        print(f"streamscribe: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, ConnectionLost) else 2
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"streamscribe: {exc}", file=sys.stderr)
        return 2
    return 0


def add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stream = sub.add_parser("stream", help="stream an audio file to a server as if live; print results")
    stream.add_argument("file", metavar="FILE", help="WAV (any rate/channels) or any FFmpeg-readable audio")
    stream.add_argument("--speed", type=float, default=1.0,
                        help="pace: 1 = real time (default), 2 = twice as fast, 0 = as fast as possible")
    stream.add_argument("--json", action="store_true",
                        help="print every server message as one JSON line")
    stream.add_argument("--multichannel", action="store_true",
                        help="transcribe each channel on its own")
    stream.add_argument("--chunk-ms", type=float, default=50.0, help="audio per frame (default 50)")
    stream.add_argument("--protocol", choices=("deepgram", "openai", "together"),
                        default="deepgram",
                        help="deepgram: /v1/listen (default); openai or together: /v1/realtime "
                             "(mono, server VAD)")
    _add_common(stream)
    stream.set_defaults(func=_stream)

    mic = sub.add_parser("mic", help="live captions from the microphone")
    mic.add_argument("--device", help="input device index or name (see --list-devices)")
    mic.add_argument("--list-devices", action="store_true", help="list input devices and exit")
    mic.add_argument("--duration", type=float, metavar="S",
                     help="stop after S seconds of audio (default: until Ctrl-C)")
    _add_common(mic)
    mic.set_defaults(func=_mic)
