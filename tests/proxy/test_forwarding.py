"""End-to-end forwarding through the real proxy to real upstreams on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re

import aiohttp
import pytest
from structlog.testing import capture_logs

from auditproxy.core.forwarding import valid_traceparent
from tests.proxy.conftest import (
    GZIP_BODY,
    Proxy,
    ProxyFactory,
    RawUpstream,
    Upstream,
    head_lines,
    header_names,
    raw_request,
)


def _hdr(pairs: list[list[str]] | list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in pairs if k.lower() == name.lower()]


async def test_post_body_is_byte_identical(proxy: Proxy) -> None:
    """A 1 MiB random POST body comes back through the proxy byte for byte."""
    payload = os.urandom(1024 * 1024)
    async with aiohttp.ClientSession() as s, s.post(f"{proxy.url}/echo", data=payload) as r:
        got = await r.read()
    assert r.status == 200
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()


async def test_get_body_is_byte_identical(proxy: Proxy) -> None:
    """A GET response body is passed unchanged."""
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.url}/bytes/100000") as r:
        got = await r.read()
    assert got == bytes(i % 251 for i in range(100000))


async def test_unknown_method_is_forwarded(
    raw_upstream: RawUpstream, make_proxy: ProxyFactory
) -> None:
    """An extension method (FOOBAR) reaches the upstream and its answer reaches the client."""
    raw_upstream.responses["/x"] = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\n{method}"
    )
    proxy = await make_proxy(raw_upstream.url)
    raw = await raw_request(
        proxy.port, b"FOOBAR /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    assert head_lines(raw)[0] == "HTTP/1.1 200 OK"
    assert raw.endswith(b"FOOBAR")
    assert raw_upstream.received[0].startswith(b"FOOBAR /x HTTP/1.1")


async def test_response_streams_before_upstream_finishes(proxy: Proxy, upstream: Upstream) -> None:
    """The first bytes of a 64 MiB response arrive before the upstream has written it all."""
    total = 0
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.url}/big/64") as r:
        first = await r.content.readany()
        assert first
        assert not upstream.big_done.is_set()
        total = len(first)
        async with asyncio.timeout(30):
            async for chunk in r.content.iter_any():
                total += len(chunk)
    assert total == 64 * 1024 * 1024
    assert r.headers["Content-Length"] == str(64 * 1024 * 1024)


async def test_request_body_streams_upstream(proxy: Proxy, upstream: Upstream) -> None:
    """A 64 MiB upload reaches the upstream while the client is still sending it."""
    chunk = b"y" * 65536
    seen_while_sending = False

    async def body() -> object:
        nonlocal seen_while_sending
        for i in range(1024):
            if i == 512:
                # Half sent: a buffering proxy would not have forwarded anything yet.
                async with asyncio.timeout(10):
                    await upstream.upload_first_chunk.wait()
                seen_while_sending = True
            yield chunk

    async with aiohttp.ClientSession() as s, s.post(f"{proxy.url}/upload", data=body()) as r:
        data = await r.json()
    assert seen_while_sending
    assert data == {"received": 64 * 1024 * 1024}


async def test_content_length_framing_preserved(proxy: Proxy) -> None:
    """An upstream Content-Length response reaches the client with Content-Length, not chunked."""
    raw = await raw_request(proxy.port, b"GET /bytes/10 HTTP/1.1\r\nHost: a\r\n\r\n")
    names = header_names(raw)
    assert "content-length: 10" in [x.lower() for x in head_lines(raw)]
    assert "transfer-encoding" not in names


async def test_chunked_framing_preserved(proxy: Proxy) -> None:
    """A chunked upstream response reaches the client chunked."""
    raw = await raw_request(proxy.port, b"GET /chunked/5 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert "transfer-encoding: chunked" in [x.lower() for x in head_lines(raw)]
    assert "content-length" not in header_names(raw)
    assert b"chunk-4;" in raw


async def test_hop_by_hop_request_headers_removed(proxy: Proxy, upstream: Upstream) -> None:
    """Hop-by-hop fields, including those named in Connection, never reach the upstream."""
    headers = {
        "Connection": "keep-alive, X-Secret-Hop",
        "X-Secret-Hop": "1",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Proxy-Authorization": "Basic abc",
        "X-End-To-End": "kept",
    }
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.url}/headers", headers=headers) as r:
        got = (await r.json())["headers"]
    names = {k.lower() for k, _ in got}
    assert not names & {"x-secret-hop", "keep-alive", "te", "proxy-authorization"}
    assert _hdr(got, "X-End-To-End") == ["kept"]


async def test_hop_by_hop_response_headers_removed(
    raw_upstream: RawUpstream, make_proxy: ProxyFactory
) -> None:
    """Hop-by-hop response fields, including Connection-listed ones, never reach the client."""
    raw_upstream.responses["/h"] = (
        b"HTTP/1.1 200 OK\r\nConnection: close, X-Resp-Hop\r\nX-Resp-Hop: 1\r\n"
        b"Keep-Alive: timeout=5\r\nX-Kept: yes\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 2\r\n\r\nok"
    )
    proxy = await make_proxy(raw_upstream.url)
    raw = await raw_request(proxy.port, b"GET /h HTTP/1.1\r\nHost: a\r\n\r\n")
    names = header_names(raw)
    assert "x-resp-hop" not in names
    assert "keep-alive" not in names
    assert "x-kept" in names


async def test_forwarding_headers_added(proxy: Proxy, upstream: Upstream) -> None:
    """X-Forwarded-For is appended; Forwarded, X-Forwarded-Proto/-Host and Via are added."""
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{proxy.url}/headers", headers={"X-Forwarded-For": "10.0.0.1"}) as r,
    ):
        got = (await r.json())["headers"]
        via = r.headers.getall("Via")
    assert _hdr(got, "X-Forwarded-For") == ["10.0.0.1, 127.0.0.1"]
    assert _hdr(got, "Forwarded")[0].startswith("for=127.0.0.1;proto=http;host=")
    assert _hdr(got, "X-Forwarded-Proto") == ["http"]
    assert _hdr(got, "X-Forwarded-Host") == [f"127.0.0.1:{proxy.port}"]
    assert _hdr(got, "Via") == ["1.1 auditproxy"]
    assert _hdr(got, "Host") == [f"127.0.0.1:{upstream.server.port}"]
    assert via == ["1.1 auditproxy"]


async def test_preserve_host_keeps_client_host(
    upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    """With preserve_host the upstream sees the client's Host."""
    proxy = await make_proxy(upstream.url)
    rt = proxy.ctx.runtime
    route = rt.routes[0]
    object.__setattr__(route, "preserve_host", True)
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{proxy.url}/headers", headers={"Host": "api.example"}) as r,
    ):
        got = (await r.json())["headers"]
    assert _hdr(got, "Host") == ["api.example"]


async def test_request_id_and_traceparent_propagated(proxy: Proxy, upstream: Upstream) -> None:
    """Incoming X-Request-Id and a valid traceparent are passed on unchanged."""
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    sent = {"X-Request-Id": "req-123", "traceparent": tp}
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.url}/headers", headers=sent) as r:
        got = (await r.json())["headers"]
        echoed = r.headers.get("X-Request-Id")
    assert _hdr(got, "X-Request-Id") == ["req-123"]
    assert _hdr(got, "traceparent") == [tp]
    assert echoed == "req-123"


async def test_request_id_and_traceparent_generated(proxy: Proxy, upstream: Upstream) -> None:
    """Missing ids are generated; an invalid traceparent is replaced by a valid one."""
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{proxy.url}/headers", headers={"traceparent": "garbage"}) as r,
    ):
        got = (await r.json())["headers"]
    rid = _hdr(got, "X-Request-Id")
    tp = _hdr(got, "traceparent")
    assert len(rid) == 1
    assert re.fullmatch(r"[0-9a-f]{32}", rid[0])
    assert len(tp) == 1
    assert valid_traceparent(tp[0])


async def test_no_decompression(proxy: Proxy) -> None:
    """gzip bytes pass unchanged with their Content-Encoding."""
    async with (
        aiohttp.ClientSession(auto_decompress=False) as s,
        s.get(f"{proxy.url}/gzip", headers={"Accept-Encoding": "gzip"}) as r,
    ):
        got = await r.read()
        encoding = r.headers.get("Content-Encoding")
    assert encoding == "gzip"
    assert got == GZIP_BODY


async def test_date_added_but_audit_sees_upstream_head(
    raw_upstream: RawUpstream, make_proxy: ProxyFactory
) -> None:
    """The client gets a Date the upstream did not send, yet the audit flags its absence."""
    raw_upstream.responses["/nodate"] = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
    )
    proxy = await make_proxy(raw_upstream.url)
    with capture_logs() as logs:
        raw = await raw_request(proxy.port, b"GET /nodate HTTP/1.1\r\nHost: a\r\n\r\n")
    assert "date" in header_names(raw)
    done = [e for e in logs if e["event"] == "exchange_completed"]
    assert "RFC9110-DATE-PRESENT" in done[0]["findings"]


async def test_refused_port_gives_502_problem(make_proxy: ProxyFactory) -> None:
    """A refused upstream connection gives 502 problem+json and counts kind=connect."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proxy = await make_proxy(f"http://127.0.0.1:{port}")
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.url}/x") as r:
        doc = await r.json(content_type=None)
        ctype = r.headers["Content-Type"]
    assert r.status == 502
    assert ctype == "application/problem+json"
    assert doc["status"] == 502
    assert doc["source"] == "auditproxy"
    assert {"type", "title", "detail", "instance"} <= doc.keys()
    assert proxy.sample("auditproxy_upstream_errors_total", {"route": "/x", "kind": "connect"}) == 1


async def test_slow_upstream_gives_504_problem(
    upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    """No response head within response_headers gives 504 problem+json (kind=timeout)."""
    proxy = await make_proxy(upstream.url, timeouts__response_headers="200ms")
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.url}/slow?s=2") as r:
        doc = await r.json(content_type=None)
    assert r.status == 504
    assert doc["status"] == 504
    assert proxy.sample("auditproxy_upstream_errors_total", {"route": "/slow", "kind": "timeout"})
    assert (
        proxy.sample(
            "auditproxy_requests_total",
            {"route": "/slow", "method": "GET", "status": "504", "compliant": "true"},
        )
        + proxy.sample(
            "auditproxy_requests_total",
            {"route": "/slow", "method": "GET", "status": "504", "compliant": "false"},
        )
        == 1
    )


async def test_truncated_upstream_body_aborts_client(
    raw_upstream: RawUpstream, make_proxy: ProxyFactory
) -> None:
    """An upstream that closes mid-body after bytes were sent makes the proxy abort the client."""
    raw_upstream.responses["/cut"] = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n" + b"a" * 10
    )
    proxy = await make_proxy(raw_upstream.url)
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.url}/cut") as r:
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()
    assert proxy.sample("auditproxy_upstream_errors_total", {"route": "/cut", "kind": "reset"}) == 1


async def test_truncated_small_body_gives_502(
    raw_upstream: RawUpstream, make_proxy: ProxyFactory
) -> None:
    """A small body cut short before anything reached the client gives 502 (kind=reset)."""
    raw_upstream.responses["/cut"] = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10
    )
    proxy = await make_proxy(raw_upstream.url)
    async with aiohttp.ClientSession() as s, s.get(f"{proxy.url}/cut") as r:
        doc = await r.json(content_type=None)
    assert r.status == 502
    assert doc["type"].endswith("upstream-reset")
    assert proxy.sample("auditproxy_upstream_errors_total", {"route": "/cut", "kind": "reset"}) == 1


async def test_foreign_absolute_form_rejected(proxy: Proxy, upstream: Upstream) -> None:
    """An absolute-form target for another host gets 400 and nothing is forwarded."""
    raw = await raw_request(
        proxy.port, b"GET http://example.com/headers HTTP/1.1\r\nHost: example.com\r\n\r\n"
    )
    assert head_lines(raw)[0].startswith("HTTP/1.1 400")
    assert b"application/problem+json" in raw
    assert upstream.seen == []


async def test_big_content_length_gives_413(proxy: Proxy, upstream: Upstream) -> None:
    """A Content-Length over max_request_body gets 413 before anything is forwarded."""
    raw = await raw_request(
        proxy.port,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 200000000\r\n\r\nabc",
    )
    assert head_lines(raw)[0].startswith("HTTP/1.1 413")
    assert upstream.seen == []


async def test_chunked_body_over_limit_gives_413(
    upstream: Upstream, make_proxy: ProxyFactory
) -> None:
    """A chunked body that grows past max_request_body is cut off with 413, counted
    under the route an earlier answered request gave the path (a refusal alone
    takes no new route label)."""
    proxy = await make_proxy(upstream.url, limits__max_request_body="100KiB")
    async with aiohttp.ClientSession() as s, s.post(f"{proxy.url}/upload", data=b"x") as r:
        assert r.status == 200

    async def body() -> object:
        for _ in range(10):
            yield b"z" * 65536

    async with aiohttp.ClientSession() as s:
        try:
            async with s.post(f"{proxy.url}/upload", data=body()) as r:
                status = r.status
        except aiohttp.ClientError:
            status = 413  # the connection may be closed while the client still sends
    assert status == 413
    assert (
        proxy.sample(
            "auditproxy_requests_total",
            {"route": "/upload", "method": "POST", "status": "413", "compliant": "true"},
        )
        + proxy.sample(
            "auditproxy_requests_total",
            {"route": "/upload", "method": "POST", "status": "413", "compliant": "false"},
        )
        == 1
    )


async def test_content_length_with_transfer_encoding_rejected(
    proxy: Proxy, upstream: Upstream
) -> None:
    """Ambiguous framing (Content-Length and Transfer-Encoding) gets 400; nothing is forwarded."""
    raw = await raw_request(
        proxy.port,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    assert head_lines(raw)[0].endswith("400 Bad Request")
    assert upstream.seen == []


async def test_long_request_line_gives_414(proxy: Proxy) -> None:
    """A request line over the limit gets 414."""
    raw = await raw_request(proxy.port, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert " 414 " in head_lines(raw)[0]


async def test_long_header_gives_431(proxy: Proxy) -> None:
    """A header field over the limit gets 431."""
    raw = await raw_request(
        proxy.port, b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n"
    )
    assert " 431 " in head_lines(raw)[0]


async def test_exchange_completed_log_event(proxy: Proxy) -> None:
    """Each request logs one exchange_completed event with ids, route, status and durations."""
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with capture_logs() as logs:
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"{proxy.url}/status/409", headers={"X-Request-Id": "r-1", "traceparent": tp}),
        ):
            pass
    done = [e for e in logs if e["event"] == "exchange_completed"]
    assert len(done) == 1
    event = done[0]
    assert event["request_id"] == "r-1"
    assert event["traceparent"] == tp
    assert event["method"] == "GET"
    assert event["status"] == 409
    assert event["route"] == "/status/{id}"
    assert event["duration_ms"] >= event["upstream_ms"] >= 0
    assert isinstance(event["findings"], list)


async def test_annotate_adds_findings_header(upstream: Upstream, make_proxy: ProxyFactory) -> None:
    """With annotate on, a non-compliant response carries X-Audit-Findings."""
    proxy = await make_proxy(upstream.url, annotate="true")
    async with aiohttp.ClientSession() as s, s.post(f"{proxy.url}/status/405") as r:
        value = r.headers.get("X-Audit-Findings", "")
    assert "RFC9110-405-ALLOW" in value
    assert len(value.encode()) <= 512
