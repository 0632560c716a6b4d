"""Retry on behalf of clients, end to end: the real proxy in front of a scripted
flaky upstream on 127.0.0.1 that counts what it receives."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import aiohttp

from auditproxy.sinks import Completed, Sink

from .conftest import Proxy, ProxyFactory
from .flaky import RESET_AFTER_STATUS, RESET_BEFORE, Flaky, answer, flaky_fixture, hang

__all__ = ["flaky_fixture"]  # the fixture, used by name


FAST = {"retry__enabled": "true", "retry__backoff__base": "5ms", "retry__backoff__max": "20ms"}


def _capture(proxy: Proxy) -> list[Completed]:
    seen: list[Completed] = []
    proxy.ctx.sinks = (*proxy.ctx.sinks, Sink("test", seen.append))
    return seen


def _retries(proxy: Proxy, outcome: str, reason: str, method: str = "GET") -> float:
    """auditproxy_retries_total for one outcome and reason, over every route."""
    want = {"method": method, "reason": reason, "outcome": outcome}
    return sum(
        s.value
        for family in proxy.registry.collect()
        for s in family.samples
        if s.name == "auditproxy_retries_total"
        and all(s.labels.get(k) == v for k, v in want.items())
    )


async def _get(url: str, method: str = "GET", **kw: object) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as s, s.request(method, url, **kw) as r:  # type: ignore[arg-type]
        return r.status, dict(r.headers), await r.read()


async def test_503_twice_then_200_is_retried(flaky: Flaky, make_proxy: ProxyFactory) -> None:
    path = flaky.script("/a", answer(503), answer(503), answer(200, b'{"ok": true}'))
    proxy = await make_proxy(flaky.url, **FAST)
    seen = _capture(proxy)
    status, headers, body = await _get(proxy.url + path)
    assert (status, body) == (200, b'{"ok": true}')
    assert headers["X-Audit-Attempts"] == "3"
    assert len(flaky.seen(path)) == 3
    await asyncio.sleep(0.05)
    assert [
        (c.exchange.attempt, c.exchange.attempts, c.exchange.response.status) for c in seen
    ] == [
        (1, 3, 503),
        (2, 3, 503),
        (3, 3, 200),
    ]
    assert len({c.exchange.request_id for c in seen}) == 1
    assert _retries(proxy, "retried", "503") == 2
    assert _retries(proxy, "succeeded", "200") == 1


async def test_post_without_key_is_sent_once(flaky: Flaky, make_proxy: ProxyFactory) -> None:
    path = flaky.script("/a", answer(503), answer(503), answer(200))
    proxy = await make_proxy(flaky.url, **FAST)
    status, headers, _ = await _get(proxy.url + path, "POST", data=b'{"x": 1}')
    assert status == 503
    assert "X-Audit-Attempts" not in headers
    assert len(flaky.seen(path)) == 1
    assert _retries(proxy, "not_retriable", "503", "POST") == 1


async def test_post_with_idempotency_key_is_retried_byte_identical(
    flaky: Flaky, make_proxy: ProxyFactory
) -> None:
    path = flaky.script("/a", answer(503), answer(201, Location="/a/1"))
    proxy = await make_proxy(flaky.url, **FAST)
    body = b'{"name": "x"}'
    status, headers, _ = await _get(
        proxy.url + path, "POST", data=body, headers={"Idempotency-Key": "k-1"}
    )
    assert status == 201
    assert headers["X-Audit-Attempts"] == "2"
    first, second = flaky.seen(path)
    assert first.body == second.body == body
    assert first.headers == second.headers  # forwarding headers included: same request
    assert first.header("Idempotency-Key") == "k-1"


async def test_retry_after_seconds_and_date_are_honoured(
    flaky: Flaky, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(flaky.url, **FAST)
    for path, after in (("/a", lambda: "1"), ("/b", lambda: formatdate(time.time() + 2, True))):
        flaky.script(path, answer(503, Retry_After=after()), answer(200))
        t0 = time.monotonic()
        status, _, _ = await _get(proxy.url + path)
        elapsed = time.monotonic() - t0
        assert status == 200
        assert 0.4 <= elapsed < 3.0, (path, elapsed)
        assert len(flaky.seen(path)) == 2


async def test_retry_after_beyond_the_cap_goes_to_the_client(
    flaky: Flaky, make_proxy: ProxyFactory
) -> None:
    path = flaky.script("/a", answer(503, Retry_After="120"), answer(200))
    proxy = await make_proxy(flaky.url, **FAST, retry__max_retry_after="2s")
    t0 = time.monotonic()
    status, headers, _ = await _get(proxy.url + path)
    assert status == 503
    assert headers["Retry-After"] == "120"
    assert time.monotonic() - t0 < 1.0
    assert len(flaky.seen(path)) == 1
    assert _retries(proxy, "retry_after_too_long", "503") == 1


async def test_resets_before_and_after_the_status_line_are_retried(
    flaky: Flaky, make_proxy: ProxyFactory
) -> None:
    a = flaky.script("/a", RESET_BEFORE, answer(200, b"fine"))
    b = flaky.script("/b", RESET_AFTER_STATUS, answer(200, b"fine"))
    proxy = await make_proxy(flaky.url, **FAST)
    seen = _capture(proxy)
    for path in (a, b):
        # POST with a key: an HTTP client library may itself resend an idempotent
        # request once after a reset, which would hide the proxy's own retry here
        key = {"Idempotency-Key": path}
        status, headers, body = await _get(proxy.url + path, "POST", data=b"{}", headers=key)
        assert (status, body) == (200, b"fine")
        assert headers["X-Audit-Attempts"] == "2"
        assert len(flaky.seen(path)) == 2
    await asyncio.sleep(0.05)
    # the failed attempts are recorded as the proxy's answer they would have been
    failed = [c.exchange for c in seen if c.exchange.attempt == 1]
    assert [(e.origin, e.response.status, e.error) for e in failed] == [
        ("proxy", 502, "reset"),
        ("proxy", 502, "reset"),
    ]


async def test_hang_past_the_per_try_timeout_is_retried(
    flaky: Flaky, make_proxy: ProxyFactory
) -> None:
    path = flaky.script("/a", hang(5), answer(200, b"second"))
    proxy = await make_proxy(flaky.url, **FAST, retry__per_try_timeout="300ms")
    t0 = time.monotonic()
    status, _, body = await _get(proxy.url + path)
    assert (status, body) == (200, b"second")
    assert time.monotonic() - t0 < 2.0
    assert len(flaky.seen(path)) == 2
    assert _retries(proxy, "retried", "timeout") == 1


async def test_body_over_the_buffer_is_sent_once(flaky: Flaky, make_proxy: ProxyFactory) -> None:
    path = flaky.script("/a", answer(503), answer(200))
    proxy = await make_proxy(flaky.url, **FAST, retry__max_buffered_body="1KiB")
    body = b"x" * 4096
    status, _, _ = await _get(proxy.url + path, "PUT", data=body)
    assert status == 503
    assert [r.body for r in flaky.seen(path)] == [body]  # streamed once, whole, never failed
    assert _retries(proxy, "not_retriable", "503", "PUT") == 1


async def test_budget_bounds_the_extra_load_on_an_always_failing_upstream(
    flaky: Flaky, make_proxy: ProxyFactory
) -> None:
    path = flaky.script("/a", answer(503))
    proxy = await make_proxy(
        flaky.url, **FAST, retry__budget__percent="20", retry__budget__min_per_second="0"
    )
    n = 60
    async with aiohttp.ClientSession() as s:
        for _ in range(n):
            async with s.get(proxy.url + path) as r:
                assert r.status == 503
    extra = len(flaky.seen(path)) - n
    assert 0 < extra <= 0.2 * n
    assert _retries(proxy, "budget_denied", "503") > 0
    assert _retries(proxy, "retried", "503") == extra


async def test_client_disconnect_during_back_off_cancels_the_retries(
    flaky: Flaky, make_proxy: ProxyFactory
) -> None:
    path = flaky.script("/a", answer(503, Retry_After="2"), answer(200))
    proxy = await make_proxy(flaky.url, **FAST)
    seen = _capture(proxy)
    _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    await asyncio.sleep(2.5)
    assert len(flaky.seen(path)) == 1
    assert [c.exchange.delivered for c in seen] == [False]


async def test_retry_off_by_default(flaky: Flaky, make_proxy: ProxyFactory) -> None:
    path = flaky.script("/a", answer(503), answer(200))
    proxy = await make_proxy(flaky.url)
    status, headers, _ = await _get(proxy.url + path)
    assert status == 503
    assert "X-Audit-Attempts" not in headers
    assert len(flaky.seen(path)) == 1
