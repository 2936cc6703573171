"""Run a request's work only while its client is still there.

Starlette notices a hung-up client only when asked, so the watch is polled; when the client
is gone the work is cancelled, freeing the model for others instead of finishing a long file.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar

from starlette.requests import Request

T = TypeVar("T")


async def _disconnected(request: Request, every_s: float) -> None:
    while not await request.is_disconnected():
        await asyncio.sleep(every_s)


async def until_disconnected(request: Request, work: Awaitable[T],
                             every_s: float = 1.0) -> T | None:
    """`work`'s result, or None (and `work` cancelled) if the client hung up first."""
    job = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request, every_s))
    try:
        await asyncio.wait({job, watcher}, return_when=asyncio.FIRST_COMPLETED)
        return job.result() if job.done() else None
    finally:
        for task in (job, watcher):
            task.cancel()
        await asyncio.gather(job, watcher, return_exceptions=True)
