"""Scale-out: a gateway whose model calls go to a pool of OpenAI-compatible servers (config only)."""

import numpy as np

from streaming.config import ModelConfig, ServerConfig
from streaming.eval.corpus import item
from streaming.eval.scoring import error_rate

from .wsclient import pcm_bytes, results, stream, transcript


async def test_streaming_gateway_transcribes_through_an_upstream_pool(server, start_server):
    gateway = start_server(ServerConfig(model=ModelConfig(
        upstreams=f"http://127.0.0.1:1,{server.http_url}", workers=2)))  # one dead server
    clip = item("en_ls_1089-134686-0000")
    audio = np.concatenate([np.zeros(8000, np.int16), clip.mono16k(), np.zeros(16000, np.int16)])
    messages = await stream(f"{gateway.ws_url}/v1/listen?interim_results=true", pcm_bytes(audio),
                            speed=2)
    finals = results(messages, final=True)
    text = " ".join(transcript(f) for f in finals)
    assert error_rate(clip.references(), text) < 0.15, text
    assert finals[0]["channel"]["alternatives"][0]["words"]
    assert messages[-1]["type"] == "Metadata"
