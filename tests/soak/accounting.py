"""The soak's end-of-run checks, as functions of what was measured (no I/O).

Each check is one row of the summary table: what it compares, the expected and
the actual value, and whether they agree. The run fails when any row fails.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from tests.soak.client import Outcome
from tests.soak.mix import Kind

BAD_LEVELS = frozenset({"error", "critical"})
REQUESTS = "auditproxy_requests_total"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    expected: str
    actual: str
    ok: bool


@dataclass
class Samples:
    """/metrics as {name: {frozenset(labels): value}}."""

    values: dict[str, dict[frozenset[tuple[str, str]], float]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Samples:
        out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
        return cls(out)

    def total(self, name: str, **match: str) -> float:
        rows = self.values.get(name, {})
        want = set(match.items())
        return sum(v for labels, v in rows.items() if want <= labels)

    def by(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = collections.defaultdict(float)
        for labels, v in self.values.get(name, {}).items():
            out[dict(labels).get(label, "")] += v
        return dict(out)


@dataclass
class Measured:
    """Everything the soak collected, for ``checks``."""

    kinds: Sequence[Kind]  # the plan: request i is kinds[i], id ids[i]
    ids: Sequence[str]
    outcomes: Mapping[int, Outcome]
    upstream_ids: Mapping[str, collections.Counter[str]]  # upstream name -> id -> times
    upstream_without_id: int
    metrics: Samples
    recorded_ids: Sequence[str]
    log_lines: Sequence[str]
    rss: tuple[int, int]  # bytes after warm-up, at the end
    fds: tuple[int, int]
    rss_bound: int
    fd_bound: int
    exit_code: int | None


def _row(name: str, expected: object, actual: object) -> Check:
    return Check(name, str(expected), str(actual), expected == actual)


def bad_log_lines(lines: Iterable[str]) -> list[str]:
    """Lines of the proxy's output that say something escaped a handler: an event
    at error level or above (``sink_failed`` is one), an event carrying an
    exception, or anything that is not a JSON event (a traceback, a warning that
    Python printed, asyncio's "Task exception was never retrieved")."""
    bad = []
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or event.get("level") in BAD_LEVELS or "exception" in event:
            bad.append(line.strip()[:300])
    return bad


def _outcome_mismatches(m: Measured) -> list[str]:
    wrong: collections.Counter[str] = collections.Counter()
    for i, kind in enumerate(m.kinds):
        o = m.outcomes.get(i)
        got = "missing" if o is None else f"{o.kind} {o.status}"
        if got != f"{kind.outcome} {kind.status}":
            detail = f" ({o.detail})" if o is not None and o.detail else ""
            wrong[f"{kind.name}: want {kind.outcome} {kind.status}, got {got}{detail}"] += 1
    return [f"{k} x{n}" for k, n in wrong.most_common(8)]


def _resends(m: Measured, upstream: str, seen: Mapping[str, int]) -> list[Check]:
    """Requests the upstream received more than once: only those the mix allows
    (``Kind.may_resend``), each at most twice; how many were is reported."""
    kind_of = {m.ids[i]: k for i, k in enumerate(m.kinds)}
    again = {rid: c for rid, c in seen.items() if c > 1}
    wrong = sorted(
        kind_of[r].name if r in kind_of else r
        for r, c in again.items()
        if r not in kind_of or not kind_of[r].may_resend or c > 2
    )
    allowed = sum(1 for k in m.kinds if k.upstream == upstream and k.may_resend)
    resent = sum(c - 1 for c in again.values())
    return [
        _row(f"{upstream} upstream: sent twice, not allowed", 0, len(wrong)),
        Check(
            f"{upstream} upstream: re-sent after a reset (allowed)",
            f"<= {allowed}",
            str(resent),
            resent <= allowed,
        ),
    ]


def checks(m: Measured) -> list[Check]:
    """Every row of the summary; see the module docstring of tests.soak.mix for
    how each request is counted."""
    n = len(m.kinds)
    out = [_row("client requests answered", n, len(m.outcomes))]
    wrong = _outcome_mismatches(m)
    out.append(
        Check(
            "client outcomes as planned",
            "0 mismatches",
            "; ".join(wrong) or "0 mismatches",
            not wrong,
        )
    )
    metrics = m.metrics
    out.append(
        _row("auditproxy_requests_total", n, int(metrics.total("auditproxy_requests_total")))
    )
    client_status = collections.Counter(str(m.outcomes[i].status) for i in m.outcomes)
    proxy_status = {k: int(v) for k, v in metrics.by(REQUESTS, "status").items()}
    by_status = dict(sorted(client_status.items())), dict(sorted(proxy_status.items()))
    out.append(_row("requests_total by status = client statuses", *by_status))
    for name in ("sample", "flaky"):
        want = {m.ids[i] for i, k in enumerate(m.kinds) if k.upstream == name}
        seen = m.upstream_ids.get(name, collections.Counter())
        out.append(_row(f"{name} upstream: distinct ids received", len(want), len(seen)))
        out.append(_row(f"{name} upstream: ids = forwarded client ids", 0, len(want ^ set(seen))))
        out.extend(_resends(m, name, seen))
    out.append(_row("upstream requests without X-Request-Id", 0, m.upstream_without_id))
    want_errors = collections.Counter(k.error for k in m.kinds if k.error is not None)
    got_errors = {
        k: int(v) for k, v in metrics.by("auditproxy_upstream_errors_total", "kind").items() if v
    }
    out.append(
        _row(
            "upstream_errors_total by kind",
            dict(sorted(want_errors.items())),
            dict(sorted(got_errors.items())),
        )
    )
    dropped = int(metrics.total("auditproxy_recorder_dropped_total"))
    lines = len(m.recorded_ids)
    out.append(_row("recorded lines + recorder drops", n, lines + dropped))
    out.append(
        _row(
            "auditproxy_recorded_exchanges_total = lines",
            lines,
            int(metrics.total("auditproxy_recorded_exchanges_total")),
        )
    )
    recorded = collections.Counter(m.recorded_ids)
    odd = len(set(recorded) - set(m.ids)) + sum(c - 1 for c in recorded.values())
    out.append(_row("recorded ids: unknown or repeated", 0, odd))
    out.append(
        _row(
            "auditproxy_in_flight_requests at the end",
            0,
            int(metrics.total("auditproxy_in_flight_requests")),
        )
    )
    rss_growth = m.rss[1] - m.rss[0]
    out.append(
        Check(
            "RSS growth after warm-up",
            f"<= {m.rss_bound // 1024} KiB",
            f"{rss_growth // 1024} KiB ({m.rss[0] // 1024} -> {m.rss[1] // 1024})",
            rss_growth <= m.rss_bound,
        )
    )
    fd_growth = m.fds[1] - m.fds[0]
    fd_text = f"{fd_growth} ({m.fds[0]} -> {m.fds[1]})"
    out.append(
        Check(
            "open descriptors growth after warm-up",
            f"<= {m.fd_bound}",
            fd_text,
            fd_growth <= m.fd_bound,
        )
    )
    bad = bad_log_lines(m.log_lines)
    out.append(
        Check(
            "errors or tracebacks in the proxy's log",
            "0",
            f"{len(bad)}" + (f": {bad[0]}" if bad else ""),
            not bad,
        )
    )
    out.append(_row("proxy exit code after SIGTERM", 0, m.exit_code))
    return out


def table(rows: Sequence[Check]) -> str:
    """The summary as aligned text, one check per line."""
    w = max(len(r.name) for r in rows)
    lines = [f"{'check':<{w}}  ok    expected / actual"]
    for r in rows:
        mark = "ok  " if r.ok else "FAIL"
        same = r.expected == r.actual
        lines.append(
            f"{r.name:<{w}}  {mark}  {r.actual if same else r.expected + ' / ' + r.actual}"
        )
    return "\n".join(lines)
