"""The field grammar at run time: an upstream on 127.0.0.1 answers with exactly the
bytes of a response that sends singleton fields on several lines, a challenge field
without a challenge and a non-``true`` Access-Control-Allow-Credentials; the proxy's
own /-/findings shows what the engine judged on the live path."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from .conftest import Proxy, ProxyFactory, RawUpstream, head_lines, raw_request

TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
BODY = b'{"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "x", "instance": "/v1/me"}'  # noqa: E501
RESPONSE = (
    b"HTTP/1.1 401 Unauthorized\r\n"
    b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
    b"Date: yesterday\r\n"
    b'WWW-Authenticate: realm="api"\r\n'
    b"WWW-Authenticate: , ,\r\n"
    b"Access-Control-Allow-Origin: *\r\n"
    b"Access-Control-Allow-Credentials: TRUE\r\n"
    b"traceparent: " + TRACEPARENT + b"\r\n"
    b"Content-Type: application/problem+json\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n"
    b"Connection: close\r\n\r\n" + BODY
)


async def _findings(proxy: Proxy) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(proxy.admin_url + "/-/findings?limit=100") as r,
    ):
        found: list[dict[str, Any]] = json.loads(await r.read())["findings"]
        return found


async def test_every_line_and_the_repetition_are_judged_live(
    raw_upstream: RawUpstream, make_proxy: ProxyFactory
) -> None:
    """Both Date lines reach the engine: the second is a date-format finding and the
    repetition one of its own; two lines without a challenge leave the 401 without
    one; TRUE is an invalid credentials value, not credentials with a wildcard."""
    raw_upstream.responses["/v1/me"] = RESPONSE
    proxy = await make_proxy(raw_upstream.url)
    raw = await raw_request(
        proxy.port, b"GET /v1/me HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    assert head_lines(raw)[0].startswith("HTTP/1.1 401")
    found = {f["rule"]: f for f in await _findings(proxy)}
    assert "yesterday" in found["RFC9110-DATE-FORMAT"]["message"]
    assert found["RFC9110-SINGLETON-REPEATED"]["header"] == "Date"
    assert "2 lines" in found["RFC9110-SINGLETON-REPEATED"]["message"]
    assert "RFC9110-401-WWW-AUTHENTICATE" in found
    assert "'TRUE'" in found["FETCH-CORS-CREDENTIALS-VALUE"]["message"]
    assert "FETCH-CORS-WILDCARD-CREDENTIALS" not in found
