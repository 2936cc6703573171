"""`streamscribe serve | stream | mic | transcribe | bench`."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace

from .config import ServerConfig
from .errors import StreamscribeError


def _serve(args: argparse.Namespace) -> int:
    from .server import serve

    config = ServerConfig.from_env()
    model = config.model
    if args.model:
        model = replace(model, name=args.model)
    if args.workers:
        model = replace(model, workers=args.workers)
    if args.threads:
        model = replace(model, cpu_threads=args.threads)
    config = replace(config, host=args.host or config.host, port=args.port or config.port,
                     model=model)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    serve(config)
    return 0


def _models(args: argparse.Namespace) -> int:
    from .models import BUNDLED, resolve_model

    for name in BUNDLED:
        resolved = resolve_model(name)
        print(f"{name}: {resolved.path} (sha256 verified)")
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
    serve.set_defaults(func=_serve)

    models = sub.add_parser("models", help="verify (and assemble) the bundled weights")
    models.add_argument("--verify", action="store_true", help="check every file's sha256 (default)")
    models.set_defaults(func=_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except StreamscribeError as exc:
        print(f"streamscribe: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
