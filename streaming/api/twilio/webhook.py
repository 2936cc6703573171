"""The webhook that receives a finished call's transcript."""

from __future__ import annotations

from typing import Any

import httpx


async def post_transcript(url: str, body: dict[str, Any], *, timeout_s: float,
                          transport: httpx.AsyncBaseTransport | None = None,
                          ) -> tuple[int | None, str | None]:
    """POST `body` as JSON to `url`. Never raises: returns the answer's HTTP status (None when
    none came) and, if the delivery failed (no answer, or a status of 400 or more), why."""
    try:
        async with httpx.AsyncClient(transport=transport, timeout=timeout_s) as client:
            response = await client.post(url, json=body)
    except httpx.HTTPError as exc:
        return None, str(exc) or type(exc).__name__
    if response.status_code >= 400:
        return response.status_code, f"answered {response.status_code}"
    return response.status_code, None
