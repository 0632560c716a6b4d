"""The engine against the real sample upstream: every row of its table, fetched over
HTTP on 127.0.0.1, gives exactly the rules the row lists (plus only may notes)."""

from __future__ import annotations

from typing import Any

import aiohttp

from auditproxy.core.engine import Profile, audit
from auditproxy.core.model import Body, Exchange, RequestHead, ResponseHead
from auditproxy.sample_upstream import ENDPOINTS, make_sample_app

from .conftest import TRACEPARENT


async def test_every_sample_row_gets_its_findings(aiohttp_server: Any, digg: Profile) -> None:
    """Each sample endpoint's upstream response yields its listed rules and nothing
    else of severity must/should; compliant rows yield no findings at all."""
    server = await aiohttp_server(make_sample_app())
    mismatches = []
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        for e in ENDPOINTS:
            headers = {**e.request_headers(), "traceparent": TRACEPARENT}
            url = f"http://127.0.0.1:{server.port}{e.path}"
            async with session.request(e.method, url, data=e.body, headers=headers) as resp:
                raw = await resp.read()
                head = tuple((k.decode(), v.decode()) for k, v in resp.raw_headers)
            ex = Exchange(
                request=RequestHead(method=e.method, target=e.path, headers=tuple(headers.items())),
                request_body=Body(size=len(e.body or b""), sample=e.body or b""),
                response=ResponseHead(status=resp.status, headers=head),
                response_body=Body(size=len(raw), sample=raw),
            )
            found = {f.rule: f.severity.value for f in audit(ex, digg)}
            extra = {r for r, sev in found.items() if r not in e.rules and sev != "may"}
            if not set(e.rules) <= set(found) or extra or (e.compliant and found):
                mismatches.append((e.name, e.rules, found))
    assert mismatches == []
