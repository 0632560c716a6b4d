"""`auditproxy replay FILE --target URL`: re-send recorded requests, compare statuses.

Redacted values are never sent: headers whose value is ``REDACTED`` are dropped and
so are query parameters equal to ``REDACTED``; ``--header`` adds fresh values (a new
token, say). Requests whose body was not recorded in full are skipped. ``--rate``
and ``--concurrency`` bound the load. The summary is a table of status changes
old -> new; ``--audit`` runs the same engine on the new responses.
Exit codes: 0 done, 1 some requests got no response, 2 unreadable input.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from auditproxy.core import engine
from auditproxy.core.errors import ConfigError
from auditproxy.core.findings import Finding
from auditproxy.core.har import recorded_findings
from auditproxy.core.model import Body, Exchange, RequestHead, ResponseHead
from auditproxy.core.redact import REDACTED
from auditproxy.offline import AuditContext, load_context
from auditproxy.recordings import Entry, read_recording

_SKIP_HEADERS = frozenset({
    "host", "content-length", "connection", "keep-alive", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade", "proxy-authorization", "proxy-authenticate",
})  # fmt: skip
_SAMPLE = 64 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a JSONL recording or a HAR file")
    parser.add_argument("--target", required=True, metavar="URL",
                        help="base URL to send to, e.g. http://127.0.0.1:8000")  # fmt: skip
    parser.add_argument("--rate", type=float, default=0.0, metavar="RPS",
                        help="at most RPS requests per second (default: unbounded)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=8, metavar="N",
                        help="at most N requests in flight (default: 8)")  # fmt: skip
    parser.add_argument("--header", action="append", default=[], metavar="'Name: value'",
                        help="add or replace a request header (repeatable)")  # fmt: skip
    parser.add_argument("--audit", action="store_true", help="audit the new responses")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S",
                        help="per-request timeout in seconds (default: 10)")  # fmt: skip
    parser.add_argument("--config", metavar="F", help="profile:/rules:/routes: for --audit")
    parser.add_argument("--profile", metavar="REF", help="profile for --audit")


@dataclass(frozen=True, slots=True)
class Plan:
    source: str
    method: str
    target: str  # path?query, already encoded
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    old_status: int
    old_rules: frozenset[str]
    route: str


@dataclass(slots=True)
class Outcome:
    plan: Plan
    status: int | None = None
    error: str | None = None
    findings: tuple[Finding, ...] = field(default=())


def parse_headers(raw: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for h in raw:
        name, sep, value = h.partition(":")
        if not sep or not name.strip() or any(c in name for c in " \t\r\n"):
            raise ConfigError("<flags>", "--header", f"{h!r} is not 'Name: value'")
        out.append((name.strip(), value.strip()))
    return tuple(out)


def _query_without_redacted(query: str) -> str:
    return "&".join(p for p in query.split("&") if p and p.partition("=")[2] != REDACTED)


def plan_request(
    source: str, entry: Mapping[str, Any], extra: tuple[tuple[str, str], ...]
) -> Plan | str:
    """The request to send for ``entry``, or why it is skipped."""
    req, resp = entry.get("request"), entry.get("response")
    if not isinstance(req, Mapping) or not isinstance(req.get("url"), str):
        return "not a HAR entry (no request.url)"
    parts = urlsplit(req["url"])
    query = _query_without_redacted(parts.query)
    target = (parts.path or "/") + (f"?{query}" if query else "")
    names = {n.lower() for n, _ in extra}
    headers = [
        (str(h["name"]), str(h.get("value", "")))
        for h in req.get("headers") or ()
        if isinstance(h, Mapping)
        and isinstance(h.get("name"), str)
        and not h["name"].startswith(":")
        and h["name"].lower() not in _SKIP_HEADERS
        and h["name"].lower() not in names
        and h.get("value") != REDACTED
    ]
    body: bytes | None = None
    post = req.get("postData")
    if isinstance(post, Mapping):
        if post.get("_truncated") or post.get("_redacted_unparseable"):
            return "request body was not recorded in full"
        text = post.get("text")
        if isinstance(text, str):
            if post.get("_encoding", post.get("encoding")) == "base64":
                try:
                    body = base64.b64decode(text, validate=True)
                except (binascii.Error, ValueError):
                    return "request body is not valid base64"
            else:
                body = text.encode("utf-8")
    old = resp.get("status") if isinstance(resp, Mapping) else None
    audit = entry.get("_audit")
    route = audit.get("route") if isinstance(audit, Mapping) else None
    return Plan(
        source=source,
        method=str(req.get("method") or "GET").upper(),
        target=target,
        headers=(*headers, *extra),
        body=body,
        old_status=old if isinstance(old, int) else 0,
        old_rules=frozenset(f.rule for f in recorded_findings(entry)),
        route=route if isinstance(route, str) else "",
    )


async def _send(
    session: aiohttp.ClientSession, base: URL, plan: Plan, ctx: AuditContext | None
) -> Outcome:
    url = URL(str(base).rstrip("/") + plan.target, encoded=True)
    try:
        async with session.request(
            plan.method, url, headers=list(plan.headers), data=plan.body, allow_redirects=False
        ) as resp:
            sample, size = bytearray(), 0
            async for chunk in resp.content.iter_chunked(16384):
                size += len(chunk)
                if len(sample) < _SAMPLE:
                    sample += chunk[: _SAMPLE - len(sample)]
            findings: tuple[Finding, ...] = ()
            if ctx is not None:
                ex = Exchange(
                    request=RequestHead(method=plan.method, target=plan.target,
                                        headers=plan.headers, host=url.host or ""),
                    response=ResponseHead(
                        status=resp.status, reason=resp.reason or "",
                        headers=tuple((k.decode("latin-1"), v.decode("latin-1"))
                                      for k, v in resp.raw_headers),
                    ),
                    request_body=Body(size=len(plan.body or b""), sample=plan.body or b""),
                    response_body=Body(size=size, sample=bytes(sample)),
                    route=plan.route or ctx.labeler.label(plan.target.split("?", 1)[0]),
                )  # fmt: skip
                findings = engine.audit(ex, ctx.profile)
            return Outcome(plan, status=resp.status, findings=findings)
    except TimeoutError:
        return Outcome(plan, error="timeout")
    except aiohttp.ClientConnectorError:
        return Outcome(plan, error="connect")
    except aiohttp.ClientError as exc:
        return Outcome(plan, error=type(exc).__name__)


async def replay(
    plans: list[Plan],
    target: str,
    *,
    rate: float,
    concurrency: int,
    timeout: float,
    ctx: AuditContext | None,
) -> list[Outcome]:
    """Send every plan, at most ``concurrency`` at once and ``rate`` per second."""
    base = URL(target)
    sem = asyncio.Semaphore(max(1, concurrency))
    start = time.monotonic()

    async def one(i: int, plan: Plan) -> Outcome:
        async with sem:
            if rate > 0:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            return await _send(session, base, plan, ctx)

    client_timeout = aiohttp.ClientTimeout(total=timeout)
    connector = aiohttp.TCPConnector(limit=max(1, concurrency))
    async with aiohttp.ClientSession(
        timeout=client_timeout, connector=connector, auto_decompress=False
    ) as session:
        return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(plans))))


def _report(outcomes: list[Outcome], elapsed: float, skipped: int, audit: bool) -> str:
    changes: Counter[tuple[str, str]] = Counter()
    for o in outcomes:
        new = str(o.status) if o.status is not None else f"error:{o.error}"
        changes[(str(o.plan.old_status or "-"), new)] += 1
    rate = len(outcomes) / elapsed if elapsed > 0 else 0.0
    lines = [f"replayed {len(outcomes)} requests in {elapsed:.2f}s ({rate:.1f}/s), "
             f"skipped {skipped}", "", f"{'OLD':<6} {'NEW':<16} {'COUNT':>6}"]  # fmt: skip
    for (old, new), n in sorted(changes.items()):
        mark = "" if old == new else "  changed"
        lines.append(f"{old:<6} {new:<16} {n:>6}{mark}")
    changed = sum(n for (old, new), n in changes.items() if old != new)
    lines += ["", f"{changed} of {len(outcomes)} changed status"]
    if audit:
        by_rule: Counter[str] = Counter(f.rule for o in outcomes for f in o.findings)
        appeared: Counter[str] = Counter()
        fixed: Counter[str] = Counter()
        for o in outcomes:
            if o.status is None:
                continue
            new_rules = {f.rule for f in o.findings}
            appeared.update(new_rules - o.plan.old_rules)
            fixed.update(o.plan.old_rules - new_rules)
        lines += ["", "findings on the new responses:"]
        lines += [f"  {rule:<36} {n:>6}  (+{appeared[rule]} new)"
                  for rule, n in sorted(by_rule.items())] or ["  none"]  # fmt: skip
        if fixed:
            lines += ["no longer found:"]
            lines += [f"  {rule:<36} {n:>6}" for rule, n in sorted(fixed.items())]
        for o in outcomes:
            if o.findings:
                ids = ", ".join(f"{f.rule}({f.severity.value})" for f in o.findings)
                lines.append(f"  {o.plan.source}  {o.plan.method} {o.plan.target} "
                             f"-> {o.status}: {ids}")  # fmt: skip
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    extra = parse_headers(args.header)
    target = urlsplit(args.target)
    if target.scheme not in ("http", "https") or not target.netloc:
        raise ConfigError("<flags>", "--target", f"{args.target!r} is not an http(s) URL")
    if args.rate < 0 or args.concurrency < 1 or args.timeout <= 0:
        raise ConfigError("<flags>", "--rate/--concurrency/--timeout",
                          "expected rate >= 0, concurrency >= 1, timeout > 0")  # fmt: skip
    ctx = load_context(args.config, args.profile) if args.audit else None
    plans: list[Plan] = []
    errors = skipped = 0
    for item in read_recording(args.file):
        if isinstance(item, Entry):
            plan = plan_request(item.source, item.entry, extra)
            if isinstance(plan, str):
                skipped += 1
                print(f"auditproxy replay: {item.source}: skipped: {plan}", file=sys.stderr)
            else:
                plans.append(plan)
        else:
            errors += item.fatal
            level = "" if item.fatal else "warning: "
            print(f"auditproxy replay: {item.source}: {level}{item.message}", file=sys.stderr)
    t0 = time.monotonic()
    bounds = {"rate": args.rate, "concurrency": args.concurrency, "timeout": args.timeout}
    outcomes = asyncio.run(replay(plans, args.target, ctx=ctx, **bounds))
    sys.stdout.write(_report(outcomes, time.monotonic() - t0, skipped, args.audit))
    if errors:
        return 2
    return 1 if any(o.status is None for o in outcomes) else 0
