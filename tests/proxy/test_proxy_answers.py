"""The proxy's own answers: the recorded head is the head that went on the wire,
and every such answer is compliant with the profile the proxy enforces."""

from __future__ import annotations

import asyncio

import pytest

from auditproxy.core.findings import is_compliant
from auditproxy.sinks import Completed, Sink

from .conftest import Proxy, ProxyFactory, RawUpstream, Upstream, head_lines, raw_request


def _capture(proxy: Proxy) -> list[Completed]:
    seen: list[Completed] = []
    proxy.ctx.sinks = (*proxy.ctx.sinks, Sink("test", seen.append))
    return seen


def _wire_fields(raw: bytes) -> set[tuple[str, str]]:
    return {
        (k.strip().lower(), v.strip())
        for k, _, v in (line.partition(":") for line in head_lines(raw)[1:])
    }


CASES = {
    "foreign-target": b"GET http://elsewhere.example/x HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n",
    "body-too-large": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n",
    "upstream-connect": b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n",
    # refused by the HTTP parser, answered through the same finish step
    "uri-too-long": b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    "headers-too-large": b"GET /x HTTP/1.1\r\nHost: a\r\n"
    + b"".join(b"X-F-%02d: %s\r\n" % (i, b"v" * 500) for i in range(48))
    + b"\r\n",
    "ambiguous-framing": b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nabc",
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_recorded_head_is_the_wire_head_and_compliant(
    case: str, upstream: Upstream, make_proxy: ProxyFactory, unused_tcp_port: int
) -> None:
    target = f"http://127.0.0.1:{unused_tcp_port}" if case == "upstream-connect" else upstream.url
    proxy = await make_proxy(target, limits__max_request_body="1MiB")
    seen = _capture(proxy)
    raw = await raw_request(proxy.port, CASES[case])
    await asyncio.sleep(0.05)
    assert len(seen) == 1
    done = seen[0]
    ex = done.exchange
    assert ex.origin == "proxy"
    assert head_lines(raw)[0].split(" ")[1] == str(ex.response.status)
    assert {(k.lower(), v) for k, v in ex.response.headers} == _wire_fields(raw)
    assert {"date", "content-length", "content-type"} <= {k.lower() for k, _ in ex.response.headers}
    assert is_compliant(done.findings), [f.rule for f in done.findings if f.counts]


async def test_client_body_timeout_answer_is_compliant(
    upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(upstream.url, timeouts__client_read="300ms")
    seen = _capture(proxy)
    raw = await raw_request(
        proxy.port, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"
    )
    assert b" 408 " in raw.split(b"\r\n", 1)[0]
    await asyncio.sleep(0.05)
    assert [c.exchange.response.status for c in seen] == [408]
    assert is_compliant(seen[0].findings)
    assert {(k.lower(), v) for k, v in seen[0].exchange.response.headers} == _wire_fields(raw)


async def test_upstream_failure_detail_names_the_kind_not_the_address(
    make_proxy: ProxyFactory, unused_tcp_port: int, raw_upstream: RawUpstream
) -> None:
    proxy = await make_proxy(f"http://127.0.0.1:{unused_tcp_port}")
    raw = await raw_request(proxy.port, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    body = raw.partition(b"\r\n\r\n")[2]
    assert b"connect" in body
    assert str(unused_tcp_port).encode() not in body
    assert b"127.0.0.1" not in body


@pytest.mark.parametrize(
    "request_bytes",
    [b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
     b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"],
    ids=["connect", "options-asterisk"],
)  # fmt: skip
async def test_connect_and_options_asterisk_are_answered_counted_and_recorded(
    request_bytes: bytes, upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(upstream.url)
    seen = _capture(proxy)
    raw = await raw_request(proxy.port, request_bytes)
    assert head_lines(raw)[0].startswith("HTTP/1.1 501")
    await asyncio.sleep(0.05)
    assert [(c.exchange.origin, c.exchange.response.status) for c in seen] == [("proxy", 501)]
    assert upstream.seen == []
    method = request_bytes.split(b" ")[0].decode()
    labels = {"route": "other", "method": method, "status": "501"}
    counted = sum(proxy.sample("auditproxy_requests_total", {**labels, "compliant": c})
                  for c in ("true", "false"))  # fmt: skip
    assert counted == 1


async def test_expect_continue_over_the_limit_gets_413_without_100(
    upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(upstream.url, limits__max_request_body="1KiB")
    raw = await raw_request(
        proxy.port,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 413"), raw[:40]
    assert b"100 Continue" not in raw
    assert upstream.seen == []


async def test_expect_continue_within_the_limit_gets_100_then_the_answer(
    upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(upstream.url)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                 b"Expect: 100-continue\r\nConnection: close\r\n\r\n")  # fmt: skip
    await writer.drain()
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert interim.startswith(b"HTTP/1.1 100")
    writer.write(b"abc")
    rest = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert rest.startswith(b"HTTP/1.1 200")
    assert rest.endswith(b"abc")


@pytest.mark.parametrize("version", [b"1.0", b"1.1"])
async def test_the_proxys_answers_are_http_1_1(
    version: bytes, upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    """RFC 9112 §2.6: the highest version the server conforms to with the client's
    major version, so HTTP/1.1 for 1.1 and 1.0 clients alike (never HTTP/1.0)."""
    proxy = await make_proxy(upstream.url, limits__max_request_body="1KiB")
    raw = await raw_request(
        proxy.port, b"POST /echo HTTP/" + version + b"\r\nHost: a\r\nContent-Length: 5000\r\n\r\n"
    )
    assert raw.startswith(b"HTTP/1.1 413"), raw[:40]
