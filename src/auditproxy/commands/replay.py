"""`auditproxy replay FILE... --target URL`: re-send recorded requests, compare statuses.

Redacted values are never sent: headers whose value is ``REDACTED`` are dropped and
so are query parameters equal to ``REDACTED``; ``--header`` adds fresh values (a new
token, say). Skipped (each counted and named on stderr): requests whose body was not
recorded in full, whose JSON or form body holds a redacted field (unless
``--send-redacted``), requests the proxy itself refused (``_audit.origin`` proxy
with a 4xx: they never reached an upstream), and the earlier attempts of a request
the proxy retried (only its last attempt is sent). ``--rate`` and ``--concurrency`` bound
the load. When nothing answers at the target, that is one line and nothing is sent.
The summary is a table of status changes old -> new; ``--audit`` runs the same engine
on the new responses. See ``EPILOG`` for the exit codes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import os
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
from auditproxy.core.redact import REDACTED, Redaction
from auditproxy.offline import AuditContext, load_context
from auditproxy.outfile import OutputError, open_output, refuse_inputs
from auditproxy.recordings import Entry, expand_inputs, read_recording
from auditproxy.settings import parse_duration

_SKIP_HEADERS = frozenset({
    "host", "content-length", "connection", "keep-alive", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade", "proxy-authorization", "proxy-authenticate",
})  # fmt: skip
_SAMPLE = 64 * 1024


EPILOG = """\
exit codes:
  0  every request got a response (and, with --fail-on-change, none changed status)
  1  some requests got no response (timeout, connection error), nothing answers at
     the target, or (with --fail-on-change) a status changed
  2  unreadable input (named on stderr; the rest is still replayed), a bad flag,
     or OUT cannot be written
"""


def _duration(value: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"got {value!r}, {exc}") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"got {value!r}, expected a duration above 0")
    return seconds


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not rate > 0 or rate == float("inf"):
        raise argparse.ArgumentTypeError(
            f"got {value!r}, expected requests per second above 0 (leave --rate out for no limit)"
        )
    return rate


def _count(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"got {value!r}, expected an integer of 1 or more")
    return int(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="JSONL recordings or HAR files; a directory stands for every "
        "recording under it (recursively, in time order)",
    )
    parser.add_argument(
        "--target",
        required=True,
        metavar="URL",
        help="base URL to send to, e.g. http://127.0.0.1:8000 (required)",
    )
    parser.add_argument(
        "--rate",
        type=_rate,
        default=None,
        metavar="RPS",
        help="at most RPS requests per second, above 0 (default: no limit)",
    )
    parser.add_argument(
        "--concurrency",
        type=_count,
        default=8,
        metavar="N",
        help="at most N requests in flight (default: 8)",
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'Name: value'",
        help="add or replace a request header (repeatable; default: none)",
    )
    parser.add_argument("--audit", action="store_true", help="audit the new responses")
    parser.add_argument(
        "--timeout",
        type=_duration,
        default=10.0,
        metavar="DURATION",
        help="per-request timeout like 500ms, 10s, 2m; a bare number is seconds (default: 10s)",
    )
    parser.add_argument(
        "--send-redacted",
        action="store_true",
        help="also send requests whose body holds a redacted field, with the "
        "literal REDACTED in it (default: skip them)",
    )
    parser.add_argument(
        "--fail-on-change",
        action="store_true",
        help="exit 1 when any request's status changed (default: exit 0)",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        default="-",
        help="write the summary to OUT (default: -, standard output)",
    )
    parser.add_argument("--config", metavar="F", help="profile:/rules:/routes: for --audit")
    parser.add_argument("--profile", metavar="REF", help="profile for --audit (default: digg)")


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
    detail: str = ""
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


def _holds_redacted(value: Any) -> bool:
    """True when a parsed JSON value has ``"REDACTED"`` at any depth."""
    if isinstance(value, dict):
        return any(_holds_redacted(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_redacted(v) for v in value)
    return bool(value == REDACTED)


def _body_redacted(text: str, mime: str) -> bool:
    if REDACTED not in text:
        return False
    if "x-www-form-urlencoded" in mime.lower():
        return any(p.partition("=")[2] == REDACTED for p in text.split("&"))
    try:
        return _holds_redacted(json.loads(text))
    except ValueError:
        return False


def _refused_by_proxy(entry: Mapping[str, Any], status: object) -> bool:
    """The proxy answered the request itself with a 4xx (too large, malformed...):
    it never reached an upstream, so there is nothing to replay."""
    audit = entry.get("_audit")
    origin = audit.get("origin") if isinstance(audit, Mapping) else None
    return origin == "proxy" and isinstance(status, int) and 400 <= status < 500


def _retried_attempt(entry: Mapping[str, Any]) -> str | None:
    """With retry on, each attempt is a line; only the last one of a request is
    replayed (the client sent it once)."""
    audit = entry.get("_audit")
    if not isinstance(audit, Mapping):
        return None
    attempt, attempts = audit.get("attempt"), audit.get("attempts")
    if isinstance(attempt, int) and isinstance(attempts, int) and attempt < attempts:
        return f"attempt {attempt} of {attempts} of a retried request (the last one is replayed)"
    return None


def plan_request(
    source: str,
    entry: Mapping[str, Any],
    extra: tuple[tuple[str, str], ...],
    *,
    send_redacted: bool = False,
) -> Plan | str:
    """The request to send for ``entry``, or why it is skipped."""
    req, resp = entry.get("request"), entry.get("response")
    if not isinstance(req, Mapping) or not isinstance(req.get("url"), str):
        return "not a HAR entry (no request.url)"
    old = resp.get("status") if isinstance(resp, Mapping) else None
    if _refused_by_proxy(entry, old):
        return f"the proxy refused it ({old}); it never reached an upstream"
    retried = _retried_attempt(entry)
    if retried:
        return retried
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
                if not send_redacted and _body_redacted(text, str(post.get("mimeType") or "")):
                    return "request body holds a redacted field (--send-redacted sends it)"
                body = text.encode("utf-8")
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
        return Outcome(plan, error="timeout", detail="no complete response within --timeout")
    except aiohttp.ClientConnectorError as exc:
        return Outcome(plan, error="connect", detail=exc.strerror or str(exc))
    except aiohttp.ClientError as exc:
        return Outcome(plan, error=type(exc).__name__, detail=str(exc) or type(exc).__name__)


async def unreachable(target: str, timeout: float) -> str | None:
    """Why nothing answers at ``target`` (a TCP connect fails), or None."""
    url = URL(target)
    host, port = url.host or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        async with asyncio.timeout(min(timeout, 5.0)):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return f"cannot connect to {host}:{port}: timed out"
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return f"cannot connect to {host}:{port}: {reason}"
    writer.close()
    return None


async def replay(
    plans: list[Plan],
    target: str,
    *,
    rate: float | None,
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
            if rate:
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


_SHOWN = Redaction.build()


def _shown(target: str) -> str:
    """A request target as printed: credential-like query values redacted (a HAR from
    another tool holds them in clear)."""
    return _SHOWN.url(target)


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
    failed: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        if o.status is None:
            failed.setdefault((o.error or "error", o.detail), []).append(o)
    if failed:
        lines += ["", "requests without a response:"]
        for (kind, detail), group in sorted(failed.items()):
            first = group[0].plan
            lines.append(f"  {len(group):>6}  {kind}: {detail}  (first: {first.source} "
                         f"{first.method} {_shown(first.target)})")  # fmt: skip
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
                lines.append(f"  {o.plan.source}  {o.plan.method} {_shown(o.plan.target)} "
                             f"-> {o.status}: {ids}")  # fmt: skip
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    extra = parse_headers(args.header)
    target = urlsplit(args.target)
    if target.scheme not in ("http", "https") or not target.netloc:
        raise ConfigError("<flags>", "--target", f"{args.target!r} is not an http(s) URL")
    ctx = load_context(args.config, args.profile) if args.audit else None
    files, problems = expand_inputs(args.files)
    try:
        refuse_inputs(args.output, files)
    except OutputError as exc:
        _say(str(exc))
        return 2
    errors = 0
    for problem in problems:
        errors += problem.fatal
        _say(f"{problem.source}: {'' if problem.fatal else 'warning: '}{problem.message}")
    plans: list[Plan] = []
    skipped = 0
    for path in files:
        for item in read_recording(path):
            if isinstance(item, Entry):
                plan = plan_request(item.source, item.entry, extra,
                                    send_redacted=args.send_redacted)  # fmt: skip
                if isinstance(plan, str):
                    skipped += 1
                    _say(f"{item.source}: skipped: {plan}")
                else:
                    plans.append(plan)
            else:
                errors += item.fatal
                _say(f"{item.source}: {'' if item.fatal else 'warning: '}{item.message}")
    if plans:
        down = asyncio.run(unreachable(args.target, args.timeout))
        if down is not None:
            _say(f"nothing answers at {args.target} ({down}); {len(plans)} requests not sent")
            return 2 if errors else 1
    t0 = time.monotonic()
    bounds = {"rate": args.rate, "concurrency": args.concurrency, "timeout": args.timeout}
    outcomes = asyncio.run(replay(plans, args.target, ctx=ctx, **bounds))
    summary = _report(outcomes, time.monotonic() - t0, skipped, args.audit)
    try:
        with open_output(args.output, files) as out:
            out.write(summary)
    except OutputError as exc:
        _say(str(exc))
        return 2
    if errors:
        return 2
    if any(o.status is None for o in outcomes):
        return 1
    changed = any(o.status != o.plan.old_status for o in outcomes)
    return 1 if args.fail_on_change and changed else 0


def _say(message: str) -> None:
    print(f"auditproxy replay: {message}", file=sys.stderr)
