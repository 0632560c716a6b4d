"""CPU cost of each piece of auditproxy's per-request work, measured in isolation.

    .venv/bin/python tests/perf/components.py

No network and no load generator: every piece (rule engine, metrics, the
exchange log line, the report, header rewriting, the recorder's HAR line) runs
in a ``timeit`` loop on the exchange that ``GET /v1/bench/small`` and
``/v1/bench/large`` produce. The figures are lower bounds (warm caches); use them
to see which piece dominates, and ``bench.py`` for the end-to-end effect.
"""

from __future__ import annotations

import asyncio
import json
import os
import timeit
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from auditproxy.core import engine
from auditproxy.core.forwarding import outbound_request_headers, outbound_response_headers
from auditproxy.core.har import to_har_entry
from auditproxy.core.model import Body, Exchange, RequestHead, ResponseHead, Timing
from auditproxy.core.redact import Redaction
from auditproxy.core.report import Report
from auditproxy.logconfig import configure_logging
from auditproxy.profiles import load_profile
from auditproxy.proxy import new_request_id, new_traceparent
from auditproxy.sample_upstream import ENDPOINTS, make_sample_app
from auditproxy.settings import RecordSettings
from auditproxy.sinks.log import LogSink
from auditproxy.sinks.metrics import Metrics

REQUEST_HEADERS = (("Host", "127.0.0.1:8080"), ("User-Agent", "wrk"), ("Accept", "*/*"))
TRACEPARENT = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"


def bench_body(path: str) -> bytes:
    """The exact bytes the sample upstream serves at ``path`` (no server needed)."""
    import asyncio

    from aiohttp.test_utils import make_mocked_request

    app = make_sample_app()

    async def get() -> bytes:
        match = await app.router.resolve(make_mocked_request("GET", path, app=app))
        resp: Any = await match.handler(make_mocked_request("GET", path, app=app))
        return bytes(resp.body)

    return asyncio.run(get())


def exchange(path: str, body: bytes) -> Exchange:
    headers = (
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("Server", "Python/3.11 aiohttp/3.14"),
    )
    return Exchange(
        request=RequestHead(method="GET", target=path, headers=REQUEST_HEADERS),
        response=ResponseHead(status=200, headers=headers),
        response_body=Body(size=len(body), sample=body),
        route=path,
        request_id="a" * 32,
        traceparent=TRACEPARENT,
        timing=Timing(started=0.0, wait=0.001, upstream=0.001, total=0.002),
    )


def per_call_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e6


def pieces(path: str, body: bytes) -> dict[str, Callable[[], object]]:
    """What the proxy does per exchange, each as a no-argument callable."""
    profile = load_profile("digg")
    metrics = Metrics(CollectorRegistry())
    report = Report(profile)
    log_sink = LogSink()
    rec = RecordSettings()
    redaction = Redaction.build(
        headers=rec.redact_headers,
        json_fields=rec.redact_json_fields,
        query_params=rec.redact_query_params,
    )
    ex = exchange(path, body)
    findings = engine.audit(ex, profile)
    advice = engine.retry_advice(ex, profile)

    def har() -> dict[str, Any]:
        return to_har_entry(
            ex,
            findings,
            advice,
            profile_name=profile.name,
            profile_version=profile.version,
            redaction=redaction,
            max_body=rec.max_body,
        )

    entry = har()
    return {
        "engine.audit, all checks": lambda: engine.audit(ex, profile),
        "engine.audit, head checks only": lambda: engine.audit(ex, profile, phase="head"),
        "engine.retry_advice": lambda: engine.retry_advice(ex, profile),
        "metrics.observe": lambda: metrics.observe(
            ex, findings, method_label="GET", upstream_seconds=0.001, overhead_seconds=0.0005
        ),
        "exchange_completed log line (JSON)": lambda: log_sink.emit(
            ex, findings, method="GET", duration_ms=1.0, upstream_ms=0.5
        ),
        "report.add": lambda: report.add(ex, findings, advice),
        "outbound request headers": lambda: outbound_request_headers(
            REQUEST_HEADERS,
            client="127.0.0.1",
            proto="http",
            host="127.0.0.1:8080",
            preserve_host=False,
            request_id="a" * 32,
            traceparent=TRACEPARENT,
        ),
        "outbound response headers": lambda: outbound_response_headers(
            ex.response.headers, request_id="a" * 32
        ),
        "request id + traceparent": lambda: (new_request_id(), new_traceparent()),
        "recorder: HAR entry (redacted)": har,
        "recorder: JSON line": lambda: json.dumps(entry, ensure_ascii=False, separators=(",", ":")),
    }


def main() -> None:
    bodies = [(e.path, bench_body(e.path)) for e in ENDPOINTS if e.path.startswith("/v1/bench/")]
    with open(os.devnull, "w") as devnull:
        configure_logging("info", "json", stream=devnull)
        # Inside a running event loop, as in the proxy: the log writer buffers there.
        asyncio.run(_measure(bodies))


async def _measure(bodies: list[tuple[str, bytes]]) -> None:
    for path, body in bodies:
        number = 5000 if len(body) < 4096 else 300
        print(f"{path} ({len(body):,} B body)")
        for name, fn in pieces(path, body).items():
            print(f"  {per_call_us(fn, number):9.1f} µs  {name}")


if __name__ == "__main__":
    main()
