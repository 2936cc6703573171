"""language=multi: the stream detects its language once, pins it, and from then on its
partials take the English fast path like an `en` stream's (real server, real models,
corpus speech). Counted in model calls (/healthz), not time, so any machine gives the same."""

import httpx
import numpy as np

from streaming.eval.corpus import item

from .test_listen_server import listen_url, silence
from .wsclient import pcm_bytes, results, stream, transcript

CLIP = "en_ls_2412-153948-0000"     # 11.7 s of LibriSpeech


async def partials_by_model(server, language: str) -> tuple[int, int, list[dict]]:
    """(partials on the main model, partials on the English partial model, interim results)
    of one stream of the clip."""
    async def counts() -> tuple[int, int]:
        async with httpx.AsyncClient() as client:
            stats = (await client.get(f"{server.http_url}/healthz")).json()["models"]["base"]
        return stats["partials"] - stats["partials_fast"], stats["partials_fast"]

    before = await counts()
    audio = np.concatenate([silence(0.3), item(CLIP).mono16k(), silence(1.0)])
    messages = await stream(listen_url(server, language=language), pcm_bytes(audio))
    after = await counts()
    finals = [f for f in results(messages, final=True) if transcript(f)]
    assert finals and all(f["language"] == "en" for f in finals)
    return after[0] - before[0], after[1] - before[1], results(messages, final=False)


async def test_multi_pins_the_language_and_then_takes_the_english_partial_path(server):
    main, fast, interim = await partials_by_model(server, "multi")
    # One detection pins it (a second if the first was unsure); every later partial is fast.
    assert main <= 2 and fast >= 2, (main, fast)
    assert interim and all(p["language"] == "en" for p in interim)
    english = await partials_by_model(server, "en")
    assert english[0] == 0 and english[1] >= 2
