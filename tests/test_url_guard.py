"""The SSRF table: every way to write a non-global address is refused, directly and after
a redirect hop; global addresses (also inside translated IPv6 forms) are let through.
Literal addresses only: no DNS, no connection is made."""

from __future__ import annotations

import asyncio
import io

import httpx
import pytest

from streaming.batch.url_fetch import check_url, download
from streaming.config import BatchConfig
from streaming.errors import UrlRefused

REFUSED = [
    # IPv4 loopback, private, link-local, shared, reserved, written in every form
    "http://127.0.0.1/", "http://127.1/", "http://2130706433/", "http://0x7f000001/",
    "http://0177.0.0.1/", "http://0.0.0.0/", "http://10.0.0.1/", "http://172.16.0.1/",
    "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data", "http://100.64.0.1/",
    "http://192.0.0.8/", "http://192.0.0.170/", "http://198.18.0.1/", "http://240.0.0.1/",
    "http://255.255.255.255/", "http://224.0.0.1/", "http://localhost/",
    # IPv6 loopback, unspecified, link-local, unique-local, multicast, documentation
    "http://[::1]/", "http://[::]/", "http://[fe80::1]/", "http://[fc00::1]/",
    "http://[fd12:3456::1]/", "http://[ff02::1]/", "http://[2001:db8::1]/",
    # IPv4 inside IPv6: mapped, translated, compatible, NAT64, 6to4, Teredo
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:a9fe:a9fe]/", "http://[::ffff:0:7f00:1]/",
    "http://[::127.0.0.1]/", "http://[::8.8.8.8]/", "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b::7f00:1]/", "http://[64:ff9b:1::a00:1]/", "http://[2002:a9fe:a9fe::1]/",
    "http://[2002:7f00:1::]/", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    # other schemes
    "ftp://8.8.8.8/a.wav", "file:///etc/passwd", "gopher://8.8.8.8/", "http:///a.wav",
]
ALLOWED = [
    "http://8.8.8.8/a.wav", "https://1.1.1.1/", "http://192.0.0.9/", "http://[2606:4700::1111]/",
    "http://[::ffff:8.8.8.8]/", "http://[64:ff9b::808:808]/", "http://[2002:808:808::1]/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_non_global_addresses_are_refused(url):
    with pytest.raises(UrlRefused) as caught:
        asyncio.run(check_url(url, BatchConfig()))
    assert caught.value.code == "url_not_allowed" and caught.value.param == "file"


@pytest.mark.parametrize("url", ALLOWED)
def test_global_addresses_are_allowed(url):
    asyncio.run(check_url(url, BatchConfig()))


@pytest.mark.parametrize("target", ["http://[64:ff9b::a9fe:a9fe]/", "http://[::ffff:10.0.0.1]/",
                                    "http://[2002:c0a8:101::1]/", "http://192.0.0.8/",
                                    "/relative-is-fine-but-then", "http://127.1/"])
def test_every_redirect_hop_is_checked(target):
    hops = []

    def handler(request: httpx.Request) -> httpx.Response:
        hops.append(str(request.url))
        if request.url.path == "/relative-is-fine-but-then":
            return httpx.Response(302, headers={"location": "http://[::ffff:7f00:1]/"})
        return httpx.Response(302, headers={"location": target})

    with pytest.raises(UrlRefused) as caught:
        asyncio.run(download("http://8.8.8.8/start", io.BytesIO(), BatchConfig(),
                             transport=httpx.MockTransport(handler)))
    assert caught.value.code == "url_not_allowed"
    assert all(hop.startswith("http://8.8.8.8/") for hop in hops)   # no refused host reached
