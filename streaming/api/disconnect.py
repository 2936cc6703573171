"""Run a request's work only while its client is still there.

Once a request's body has been read, the ASGI `receive` channel has nothing left to say but
`http.disconnect`, so waiting on it learns of a hang-up the moment the server does, with no
polling delay: the work is cancelled at once, freeing the model for others instead of
finishing (or starting more pieces of) a long file nobody will read.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar

from starlette.requests import Request

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone; call only after the body has been read."""
    while (await request.receive())["type"] != "http.disconnect":
        pass                             # leftover body of a request that was not read fully


async def until_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """`work`'s result, or None (and `work` cancelled) if the client hung up first."""
    job = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({job, watcher}, return_when=asyncio.FIRST_COMPLETED)
        return job.result() if job.done() else None
    finally:
        for task in (job, watcher):
            task.cancel()
        await asyncio.gather(job, watcher, return_exceptions=True)
