"""Helpers for the recording tests: recorder settings and exchanges as the proxy builds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from auditproxy.core.engine import Profile, audit
from auditproxy.core.findings import Finding, RetryAdvice, Severity
from auditproxy.core.model import Body, Exchange, RequestHead, ResponseHead, Timing
from auditproxy.sinks.metrics import Metrics
from auditproxy.sinks.recorder import Recorder

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class RecordSettings:
    enabled: bool = True
    dir: str = "recordings"
    sample: float = 1.0
    always_record_noncompliant: bool = True
    max_body: int = 64 * 1024
    rotate_bytes: int = 100 * 1024 * 1024
    keep_files: int = 20
    redact_headers: tuple[str, ...] = ()
    redact_json_fields: tuple[str, ...] = ()
    redact_query_params: tuple[str, ...] = ()
    queue_size: int = 10000
    on_full: str = "drop"
    extra: dict[str, Any] = field(default_factory=dict)


def make_exchange(
    *,
    method: str = "GET",
    target: str = "/orders/1",
    status: int = 200,
    req_headers: tuple[tuple[str, str], ...] = (),
    resp_headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),),
    req_body: bytes = b"",
    resp_body: bytes = b'{"id": 1}',
    resp_size: int | None = None,
    request_id: str = "req-1",
    started: float = 1_700_000_000.0,
    route: str = "/orders/{id}",
) -> Exchange:
    """An exchange as the proxy would hand it to the recorder."""
    return Exchange(
        request=RequestHead(
            method=method, target=target, headers=req_headers, host="api.example.test"
        ),
        response=ResponseHead(status=status, reason="OK", headers=resp_headers),
        request_body=Body(size=len(req_body), sample=req_body),
        response_body=Body(
            size=len(resp_body) if resp_size is None else resp_size, sample=resp_body
        ),
        route=route,
        request_id=request_id,
        timing=Timing(started=started, wait=0.004, upstream=0.005, total=0.006),
    )


MISSING_LOCATION = Finding(
    rule="ARP.03.LOCATION-201",
    severity=Severity.MUST,
    message="201 Created without Location",
    category="missing_header",
    header="Location",
)


NEVER = RetryAdvice(advice="never")


def sample_value(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    value = metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else float(value)


# Requests carry these secrets; no recording may contain them.
SECRETS = {
    "bearer": "s3cr3t-bearer-7f1c2a",
    "cookie": "sessid-91ab77e0",
    "apikey": "k-5d4e3c2b1a",
    "query_token": "qtok-0a9b8c7d",
    "password": "hunter2-correct-horse",
}

SAMPLE_ROWS = (
    "get-order",
    "create-order",
    "get-order-missing",
    "add-line-no-location",
    "delete-collection-no-allow",
    "get-receipt-201",
    "invoice-401-no-challenge",
    "attachments-html-error",
    "lock-403-thin-problem",
    "tracking-broken-json",
    "refund-503-no-retry-after",
    "shipping-cors-wildcard-credentials",
)


async def capture(session: Any, base_url: str, name: str, *, secrets: bool = True) -> Exchange:
    """Send one sample-upstream row's request and build the Exchange the proxy would build."""
    import time

    from auditproxy.sample_upstream import endpoint

    ep = endpoint(name)
    headers: list[tuple[str, str]] = [("Accept", "application/json")]
    target = ep.path
    if secrets:
        headers += [
            ("Authorization", f"Bearer {SECRETS['bearer']}"),
            ("Cookie", f"session={SECRETS['cookie']}; theme=dark"),
            ("X-Api-Key", SECRETS["apikey"]),
        ]
        target += f"?access_token={SECRETS['query_token']}&page=1"
    if ep.body is not None:
        headers.append(("Content-Type", "application/json"))
    started = time.time()
    async with session.request(
        ep.method, base_url + target, headers=headers, data=ep.body, allow_redirects=False
    ) as resp:
        body = await resp.read()
        resp_headers = tuple((k.decode("latin-1"), v.decode("latin-1"))
                             for k, v in resp.raw_headers)  # fmt: skip
        status, reason = resp.status, resp.reason or ""
    host = base_url.split("://", 1)[1]
    return Exchange(
        request=RequestHead(method=ep.method, target=target, headers=tuple(headers), host=host),
        response=ResponseHead(status=status, reason=reason, headers=resp_headers),
        request_body=Body(size=len(ep.body or b""), sample=ep.body or b""),
        response_body=Body(size=len(body), sample=body),
        route=ep.route,
        request_id=name,
        timing=Timing(started=started, wait=0.001, upstream=0.002, total=0.002),
    )


async def record_sample_traffic(
    base_url: str, directory: Path, metrics: Metrics, profile: Profile
) -> tuple[Path, list[list[dict[str, Any]]]]:
    """Send the sample rows, record them as the proxy would; the file and the live findings."""
    rec = Recorder(RecordSettings(dir=str(directory)), metrics, profile)
    await rec.start()
    live = []
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        for name in SAMPLE_ROWS:
            ex = await capture(session, base_url, name)
            findings = audit(ex, profile)
            live.append([f.as_dict() for f in findings])
            await rec.submit(ex, findings, NEVER)
    await rec.close()
    assert rec.path is not None
    return Path(rec.path), live
