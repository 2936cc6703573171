"""`streamscribe serve | stream | mic | transcribe | bench`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace

from ..config import ServerConfig
from ..errors import StreamscribeError


def _serve(args: argparse.Namespace) -> int:
    from ..api.server import serve

    config = ServerConfig.from_env()
    model = config.model
    if args.model:
        model = replace(model, name=args.model)
    if args.workers:
        model = replace(model, workers=args.workers)
    if args.threads:
        model = replace(model, cpu_threads=args.threads)
    if args.upstream:
        model = replace(model, upstreams=",".join(args.upstream))
    port = config.port if args.port is None else args.port      # 0: any free port
    config = replace(config, host=args.host or config.host, port=port,
                     model=model)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    interrupted = serve(config)
    return 130 if interrupted else 0


def _models(args: argparse.Namespace) -> int:
    from ..model.weights import BUNDLED, resolve_model

    for name in BUNDLED:
        resolved = resolve_model(name)
        print(f"{name}: {resolved.path} (sha256 verified)")
    return 0


def _bench(argv: list[str]) -> int:
    from bench.harness import main as bench_main

    return int(bench_main(argv))


def _transcribe(args: argparse.Namespace) -> int:
    import asyncio

    from .transcribe import TranscribeRequest, run_in_process, run_remote, write_output

    request = TranscribeRequest(
        source=args.source, model=args.model, language=args.language, task=args.task,
        response_format=args.response_format, prompt=args.prompt,
        temperature=args.temperature, word_timestamps=args.word_timestamps)
    if args.url:
        body = run_remote(request, args.url, api_key=args.api_key)
    else:
        logging.basicConfig(level=logging.WARNING)
        body = asyncio.run(run_in_process(request, ServerConfig.from_env()))
    write_output(body, args.output)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamscribe", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (streaming, batch API, pages)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1; 0.0.0.0 to expose)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--model", help="bundled model (base, tiny.en) or CTranslate2 directory")
    serve.add_argument("--workers", type=int, help="concurrent model calls")
    serve.add_argument("--threads", type=int, help="CPU threads per model call")
    serve.add_argument("--upstream", action="append", metavar="URL",
                       help="send model calls to this OpenAI-compatible server instead of a "
                            "local model (repeat for a pool; use --workers for concurrency)")
    serve.set_defaults(func=_serve)

    models = sub.add_parser("models", help="verify every bundled model file's sha256 (and "
                                           "assemble split weights)")
    models.set_defaults(func=_models)

    # Listed for --help only: main() hands every argument after `bench` to bench.harness.
    sub.add_parser("bench", add_help=False,
                   help="benchmark suites against a local server (`streamscribe bench --help`)")
    transcribe = sub.add_parser("transcribe", help="transcribe or translate one file or URL")
    transcribe.add_argument("source", metavar="FILE|URL", help="audio/video file or http(s) URL")
    transcribe.add_argument("--model", help="model or alias (default: the configured model)")
    transcribe.add_argument("--language", help="ISO 639-1 code, 'auto', or a set like 'en,de'")
    transcribe.add_argument("--task", choices=("transcribe", "translate"), default="transcribe")
    transcribe.add_argument("--response-format", default="text",
                            choices=("json", "text", "srt", "vtt", "verbose_json"))
    transcribe.add_argument("--prompt", help="text to guide spelling and style")
    transcribe.add_argument("--temperature", type=float, default=0.0)
    transcribe.add_argument("--word-timestamps", action="store_true",
                            help="words with times in verbose_json")
    transcribe.add_argument("-o", "--output", help="write here instead of stdout")
    transcribe.add_argument("--url", help="use a running server (http://host:port) "
                                          "instead of loading the model here")
    transcribe.add_argument("--api-key", default=os.environ.get("STREAMSCRIBE_API_KEY"),
                            help="key for --url (default $STREAMSCRIBE_API_KEY)")
    transcribe.set_defaults(func=_transcribe)

    from clients.cli import add_client_commands  # `stream FILE` and `mic`

    add_client_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
        return status
    except StreamscribeError as exc:
        print(f"streamscribe: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

