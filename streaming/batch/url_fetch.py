"""Download the audio behind a `file` URL, as Together allows: http(s) only, size-capped, and
never to private, loopback or link-local addresses (SSRF) unless the allow-list names them.

Every redirect hop is checked again. The check resolves the name just before connecting;
a DNS answer that changes between the check and httpx's own lookup (rebinding) is not
covered — deployments that face hostile users should also firewall the server's egress.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

import httpx

from ..config import BatchConfig
from ..errors import FileTooLarge, UrlRefused

MAX_REDIRECTS = 5
CHUNK = 1 << 16

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_url(value: str) -> bool:
    return value.strip().lower().startswith(("http://", "https://")) or "://" in value[:16]


def _allow_list(config: BatchConfig) -> tuple[set[str], list[IPNetwork]]:
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for entry in (e.strip() for e in config.url_allowlist.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.lower())
    return hosts, networks


# IPv6 forms that carry an IPv4 address a gateway may reach on our behalf.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_COMPATIBLE = ipaddress.ip_network("::/96")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")     # SIIT, RFC 2765


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address the IPv6 address carries: translated, NAT64, 6to4, Teredo (server
    and client)."""
    found = [ip.sixtofour] if ip.sixtofour is not None else []
    if ip.teredo is not None:
        found += ip.teredo
    if ip in _TRANSLATED or any(ip in net for net in _NAT64):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _public(address: str) -> bool:
    """Whether the address, and every IPv4 address embedded in it, is globally reachable.

    Python's `is_global` alone is not enough: it calls NAT64 (64:ff9b::a9fe:a9fe is
    169.254.169.254 behind a NAT64 gateway), 6to4 and IPv4-compatible addresses global, and
    (on some versions) 192.0.0.8."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return _public_v4(ip)
    if ip.ipv4_mapped is not None:          # the socket connects to the IPv4 address itself
        return _public_v4(ip.ipv4_mapped)
    if ip in _COMPATIBLE:                   # deprecated (RFC 4291); nothing legitimate uses it
        return False
    return ip.is_global and not ip.is_multicast and all(
        _public_v4(v4) for v4 in _embedded_ipv4(ip))


_IETF_PROTOCOL = ipaddress.ip_network("192.0.0.0/24")   # only .9 and .10 are global anycast


def _public_v4(ip: ipaddress.IPv4Address) -> bool:
    if ip in _IETF_PROTOCOL and str(ip) not in ("192.0.0.9", "192.0.0.10"):
        return False
    return ip.is_global and not ip.is_multicast


async def check_url(url: str, config: BatchConfig) -> None:
    """Raise UrlRefused unless `url` is http(s) and every address it resolves to may be reached."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UrlRefused(f"only http and https URLs are accepted, not {url[:100]!r}",
                         param="file")
    host = parts.hostname.lower()
    hosts, networks = _allow_list(config)
    if host in hosts:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UrlRefused(f"cannot resolve {host!r}: {exc}", code="url_fetch_failed",
                         param="file") from exc
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        allowed = any(ipaddress.ip_address(address.split("%", 1)[0]) in net for net in networks)
        if not allowed and not _public(address):
            raise UrlRefused(f"URL host {host!r} resolves to the non-public address {address}; "
                             "private, loopback and link-local addresses are refused",
                             param="file")


async def download(url: str, dest: BinaryIO, config: BatchConfig, *,
                   transport: httpx.AsyncBaseTransport | None = None) -> int:
    """Write the body at `url` into `dest` (writes off the event loop); return its size."""
    timeout = httpx.Timeout(config.url_timeout_s)
    try:
        async with asyncio.timeout(config.url_total_timeout_s):
            async with httpx.AsyncClient(transport=transport, timeout=timeout,
                                         follow_redirects=False) as client:
                for _ in range(MAX_REDIRECTS + 1):
                    await check_url(url, config)
                    async with client.stream("GET", url) as response:
                        if response.is_redirect and "location" in response.headers:
                            url = urljoin(url, response.headers["location"])
                            continue
                        return await _save(response, dest, config)
                raise UrlRefused(f"more than {MAX_REDIRECTS} redirects", code="url_fetch_failed",
                                 param="file")
    except TimeoutError as exc:
        raise UrlRefused(f"downloading the URL took longer than {config.url_total_timeout_s:g} s",
                         code="url_fetch_timeout", param="file") from exc
    except httpx.TimeoutException as exc:
        raise UrlRefused(f"the URL timed out: {exc!r}", code="url_fetch_timeout",
                         param="file") from exc
    except httpx.HTTPError as exc:
        raise UrlRefused(f"the URL could not be fetched: {exc!r}", code="url_fetch_failed",
                         param="file") from exc


def _too_large(config: BatchConfig) -> FileTooLarge:
    # Together answers an oversized URL download with 400, an oversized upload with 413.
    return FileTooLarge(f"the file behind the URL is larger than {config.max_url_bytes} bytes",
                        status=400, param="file")


async def _save(response: httpx.Response, dest: BinaryIO, config: BatchConfig) -> int:
    if response.status_code >= 400:
        raise UrlRefused(f"the URL answered HTTP {response.status_code}", code="url_fetch_failed",
                         param="file")
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > config.max_url_bytes:
        raise _too_large(config)
    size = 0
    async for chunk in response.aiter_bytes(CHUNK):
        size += len(chunk)
        if size > config.max_url_bytes:
            raise _too_large(config)
        await asyncio.to_thread(dest.write, chunk)
    return size
