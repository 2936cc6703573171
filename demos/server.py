"""Where a demo's server comes from: the one at `--url`, or one the demo starts itself.

Every demo runs with one command and depends on no service it does not start: without
`--url`, it uses a streamscribe server already answering on 127.0.0.1:8000, or else starts
one in-process on a free port (loading the default model takes a few seconds) and stops it
on exit.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"


def http_url(url: str) -> str:
    return url.rstrip("/").replace("ws://", "http://", 1).replace("wss://", "https://", 1)


def ws_url(url: str) -> str:
    return url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)


def _answers(url: str) -> bool:
    try:
        return httpx.get(http_url(url) + "/healthz", timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def demo_server(url: str | None = None, *, quiet: bool = False, **config) -> Iterator[str]:
    """Yield the HTTP base URL of a server to use (see the module docstring)."""
    if url:
        yield http_url(url)
        return
    if not config and _answers(DEFAULT_URL):
        yield DEFAULT_URL
        return
    from streaming.api.server import background_server
    from streaming.config import ServerConfig

    if not quiet:
        print("starting a streamscribe server for this demo (loading the model)...",
              file=sys.stderr, flush=True)
    with background_server(ServerConfig.from_env(port=0, **config)) as server:
        yield server.http_url
