"""Live captions, in the terminal or in the browser, from the microphone or a file.

    python -m demos.live_captions                  # microphone -> terminal captions
    python -m demos.live_captions talk.wav         # a file, at real-time pace -> terminal
    python -m demos.live_captions --web            # the caption page in your browser

Without `--url` the demo uses the server on 127.0.0.1:8000, or starts its own.
The terminal captions are the client library's (`clients.captions.CaptionPrinter`): the
partial line is redrawn in place (dim), finals are committed with their start time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import webbrowser
from typing import Callable

from clients import StreamOptions
from clients.captions import CaptionPrinter
from clients.file_stream import iter_file

from ..server import demo_server, ws_url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demos.live_captions",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", help="audio file to caption (default: the microphone)")
    parser.add_argument("--web", action="store_true", help="open the browser caption page instead")
    parser.add_argument("--url", help="server (default: 127.0.0.1:8000 if running, else start one)")
    parser.add_argument("--language", default="en", help="ISO 639-1 code or 'multi' (default en)")
    parser.add_argument("--model", help="model on the server (default: the server's)")
    parser.add_argument("--speed", type=float, default=1.0, help="file pace: 1 = real time, 0 = at once")
    parser.add_argument("--device", help="microphone device (see `streamscribe mic --list-devices`)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds of microphone audio")
    parser.add_argument("--token", help="API key, when the server requires one")
    parser.add_argument("--no-browser", action="store_true", help="with --web: print the URL only")
    return parser


async def caption_file(url: str, path: str, options: StreamOptions, *, speed: float,
                       printer: CaptionPrinter, token: str | None) -> None:
    async for event in iter_file(ws_url(url), path, speed=speed, options=options, token=token):
        printer.show(event)


def main(argv: list[str] | None = None, *, opener: Callable[[str], bool] = webbrowser.open,
         out=None) -> int:
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    options = StreamOptions(language=args.language, model=args.model, interim_results=True)
    with demo_server(args.url) as url:
        if args.web:
            page = url + "/" + (f"?token={args.token}" if args.token else "")
            print(f"caption page: {page}", file=out, flush=True)
            if not args.no_browser:
                opener(page)
            if args.url is None and url != "http://127.0.0.1:8000":
                # this process runs the server: keep it up while the page is used
                print("serving; Ctrl-C to stop", file=sys.stderr, flush=True)
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
            return 0
        printer = CaptionPrinter(out, show_language=args.language == "multi")
        try:
            if args.file:
                asyncio.run(caption_file(url, args.file, options, speed=args.speed,
                                         printer=printer, token=args.token))
            else:
                from clients.mic import run_mic

                asyncio.run(run_mic(ws_url(url), device=args.device, options=options,
                                    duration=args.duration, printer=printer, ready=sys.stderr,
                                    token=args.token))
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
