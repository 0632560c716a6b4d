"""Retry on behalf of clients (SPEC §10): the compiled policy, the pure decision,
Retry-After, back-off and the ratio budget, and the configuration they come from."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from auditproxy.cli import main
from auditproxy.core.errors import ConfigError
from auditproxy.core.profile import Profile, RetryWhen
from auditproxy.core.retry import (
    CONDITIONS,
    RetryBudget,
    RetryDecision,
    RetryPolicy,
    backoff_delay,
    compile_policy,
    decide,
    retry_after_seconds,
)
from auditproxy.profiles import load_profile
from auditproxy.settings import RetrySettings, RetryStatuses, Settings, load_settings

from .conftest import user_profile

NOW = 1_700_000_000.0  # wall clock of every decision below
LISTED = "/cases/{id}"  # the route label configured for 404 retries
KEY = "Idempotency-Key"


def _http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, UTC), usegmt=True)


def _policy(profile: Profile, **retry: Any) -> RetryPolicy:
    statuses = retry.pop("statuses", {"retry_404_routes": (LISTED,)})
    settings = RetrySettings(enabled=True, statuses=RetryStatuses(**statuses), **retry)
    return compile_policy(settings, profile)


def _decide(policy: RetryPolicy, **given: Any) -> RetryDecision:
    args: dict[str, Any] = {
        "method": "GET", "request_headers": (), "attempt": 1, "status": 503,
        "error_kind": None, "retry_after": None, "response_started": False,
        "client_failed": False, "body_replayable": True, "route": LISTED,
        "now_epoch": NOW, "deadline_left": 30.0, "rand": 0.5, "budget_ok": True,
    }  # fmt: skip
    args.update(given)
    return decide(policy, **args)


# ---------------------------------------------------------------- the whole table

# One status per handling row of the digg profile (class rows by a sample).
ROW_STATUSES = (100, 200, 300, 301, 302, 303, 304, 305, 306, 307, 400, 401, 402, 403, 404, 405,
                406, 408, 409, 410, 411, 413, 414, 415, 417, 426, 500, 501, 502, 503, 504,
                505)  # fmt: skip
# Written out here from SPEC §10 and rule-catalog §2, not read from the profile:
RETRIED = {408, 500, 503, 502, 504}  # must + may
NEEDS_RETRY_AFTER = {413}  # conditional: a Retry-After within the cap
HOLDING_HERE = {404, 411}  # conditional, and the table runs on a listed route with the body held
RETRY_AFTERS = {  # name -> (header value, the delay it asks for)
    "no-ra": (None, None),
    "ra-seconds": ("2", 2.0),
    "ra-date": (_http_date(NOW + 3), 3.0),
    "ra-too-long": ("60", 60.0),
}
BACKOFF_FIRST = 0.5 * 0.1  # rand 0.5 x base 100ms for the first retry
TABLE = [
    (status, method, key, ra, budget)
    for status in ROW_STATUSES
    for method in ("GET", "POST")
    for key in (False, True)
    for ra in RETRY_AFTERS
    for budget in (True, False)
]


def _expected(
    status: int, method: str, key: bool, ra: str, budget: bool
) -> tuple[str | None, float]:
    _, wait = RETRY_AFTERS[ra]
    triggered = (
        status in RETRIED
        or (status in NEEDS_RETRY_AFTER and wait is not None)
        or status in HOLDING_HERE
    )
    if not triggered:
        return None, 0.0
    if method == "POST" and not key:
        return "not_retriable", 0.0
    if wait is not None and wait > 10:
        return "retry_after_too_long", 0.0
    if not budget:
        return "budget_denied", 0.0
    return "retried", BACKOFF_FIRST if wait is None else wait


def test_the_table_covers_every_row(digg: Profile) -> None:
    """ROW_STATUSES reaches every row of the profile's handling table."""
    rows = {digg.handling_row(s) for s in ROW_STATUSES}
    assert rows == set(digg.handling.values()) | set(digg.handling_classes.values())


@pytest.mark.parametrize(
    ("status", "method", "key", "ra", "budget"),
    TABLE,
    ids=[f"{s}-{m}-{'key' if k else 'nokey'}-{ra}-{'open' if b else 'closed'}"
         for s, m, k, ra, b in TABLE],
)  # fmt: skip
def test_decision_for_every_row(
    digg: Profile, status: int, method: str, key: bool, ra: str, budget: bool
) -> None:
    """Every handling row x idempotent or not x key or not x Retry-After form x budget
    gives the outcome and delay SPEC §10 asks for."""
    headers = ((KEY, '"8e03978e"'),) if key else ()
    decision = _decide(
        _policy(digg), method=method, request_headers=headers, status=status,
        retry_after=RETRY_AFTERS[ra][0], budget_ok=budget,
    )  # fmt: skip
    outcome, delay = _expected(status, method, key, ra, budget)
    assert decision.outcome == outcome
    assert decision.retry == (outcome == "retried")
    assert decision.delay == pytest.approx(delay)
    assert decision.reason == str(status)


# ---------------------------------------------------------------- single rules


def test_conditional_rows_follow_their_condition(digg: Profile) -> None:
    """404 only on a listed route, 411 only with the body held, 413 only with a
    Retry-After; the other conditional rows (301, 401, 417, ...) never."""
    policy = _policy(digg)
    assert _decide(policy, status=404, route="/orders/{id}").outcome is None
    assert _decide(policy, status=404).retry
    assert _decide(policy, status=411, body_replayable=False).outcome is None
    assert _decide(policy, status=411).retry
    assert _decide(policy, status=413).outcome is None
    assert _decide(policy, status=413, retry_after="junk").outcome is None
    assert _decide(policy, status=413, retry_after="1").retry
    assert set(policy.conditional) == {404, 411, 413}
    assert set(CONDITIONS) == set(get_args(RetryWhen))  # every condition can be evaluated


@pytest.mark.parametrize(
    ("given", "outcome"),
    [
        ({"response_started": True}, "not_retriable"),
        ({"client_failed": True}, "not_retriable"),
        ({"body_replayable": False}, "not_retriable"),
        ({"method": "PATCH"}, "not_retriable"),
        ({"method": "POST", "request_headers": (("idempotency-key", '"a"'),)}, "retried"),
        ({"method": "POST", "request_headers": ((KEY, "  "),)}, "not_retriable"),
        ({"method": "PURGE", "request_headers": ((KEY, '"a"'),)}, "not_retriable"),
        ({"method": "DELETE"}, "retried"),
        ({"attempt": 2}, "retried"),
        ({"attempt": 3}, "exhausted"),
        ({"deadline_left": 0.05}, "exhausted"),  # back-off 50 ms would reach the deadline
        ({"deadline_left": 0.051}, "retried"),
        ({"retry_after": "5", "deadline_left": 4.0}, "exhausted"),
        ({"retry_after": "10"}, "retried"),  # the cap itself is allowed
        ({"retry_after": "11"}, "retry_after_too_long"),
        ({"retry_after": _http_date(NOW - 3600)}, "retried"),  # a past date: at once
        ({"status": None, "error_kind": "connect"}, "retried"),
        ({"status": None, "error_kind": "reset"}, "retried"),
        ({"status": None, "error_kind": "timeout"}, "retried"),
        ({"status": None, "error_kind": "protocol"}, None),
        ({"status": None, "error_kind": "connect", "method": "POST"}, "not_retriable"),
        ({"status": None, "error_kind": "reset", "response_started": True}, "not_retriable"),
        ({"status": 200}, None),
        ({"status": 599}, None),  # not in the table
    ],
)  # fmt: skip
def test_safety_and_limits(digg: Profile, given: dict[str, Any], outcome: str | None) -> None:
    """Each rule of the decision on its own: never after a response byte, never when
    the client failed or the body is not held, methods and key, attempts, deadline,
    the Retry-After cap, upstream error kinds."""
    decision = _decide(_policy(digg), **given)
    assert decision.outcome == outcome
    assert decision.retry == (outcome == "retried")
    if given.get("error_kind"):
        assert decision.reason == given["error_kind"]


def test_retry_after_sets_the_delay_unless_told_not_to(digg: Profile) -> None:
    """respect_retry_after: the answer's delay; off: back-off, the cap still applies."""
    assert _decide(_policy(digg), retry_after="3").delay == 3.0
    ignoring = _policy(digg, respect_retry_after=False)
    assert _decide(ignoring, retry_after="3").delay == pytest.approx(BACKOFF_FIRST)
    assert _decide(ignoring, retry_after="60").outcome == "retry_after_too_long"
    assert _decide(ignoring, status=413, retry_after="3").retry


def test_backoff_grows_with_the_attempt(digg: Profile) -> None:
    """The n-th retry waits rand x min(max, base x 2^(n-1))."""
    policy = _policy(digg, max_attempts=10)
    delays = [_decide(policy, attempt=a, rand=1.0).delay for a in range(1, 7)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0])
    assert _decide(policy, attempt=3, rand=0.0).delay == 0.0


def test_disabled_policy_retries_nothing(digg: Profile) -> None:
    policy = dataclasses.replace(_policy(digg), enabled=False)
    assert _decide(policy) == RetryDecision(False, 0.0, "503", None)


def test_statuses_from_the_table_or_the_config(digg: Profile) -> None:
    """must/may come from the handling table; retry_may: false drops the may rows;
    a must/may list in the config replaces the table's column."""
    assert _policy(digg).statuses == {408, 500, 502, 503, 504}
    no_may = _policy(digg, statuses={"retry_may": False})
    assert no_may.statuses == {408, 500, 503}
    assert _decide(no_may, status=502).outcome is None
    own = _policy(digg, statuses={"must": (503, 429, 404)})
    assert own.statuses == {503, 429, 404, 502, 504}
    assert 404 not in own.conditional  # listed outright, no longer conditional
    assert _decide(own, status=429).retry
    assert _decide(own, status=404, route="/elsewhere").retry
    assert _decide(own, status=500).outcome is None
    assert _policy(digg, statuses={"may": ()}).statuses == {408, 500, 503}


def test_methods_and_key_header_come_from_the_config(digg: Profile) -> None:
    policy = _policy(digg, methods=("GET",), idempotency_key_header="X-Request-Key")
    assert _decide(policy, method="DELETE").outcome == "not_retriable"
    assert _decide(policy, method="POST", request_headers=((KEY, '"a"'),)).outcome == (
        "not_retriable"
    )
    assert _decide(policy, method="POST", request_headers=(("x-request-key", "a"),)).retry


# ---------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("99999999999999999999", 1e20),
        (_http_date(NOW + 90), 90.0),
        (_http_date(NOW - 90), 0.0),  # in the past: now
        ("Tue, 14 Nov 2023 22:13:27 GMT", 7.0),  # NOW + 7 s, IMF-fixdate
        ("Tuesday, 14-Nov-23 22:13:27 GMT", 7.0),  # obsolete RFC 850 form
        ("Tue Nov 14 22:13:27 2023", 7.0),  # obsolete asctime form, no zone: UTC
        ("Tue, 14 Nov 2023 23:13:27 +0100", 7.0),  # an offset is honoured
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("²", None),  # a Unicode digit is not DIGIT
        ("Tue, 32 Nov 2023 22:13:27 GMT", None),
        ("5, 6", None),
    ],
)  # fmt: skip
def test_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    """delay-seconds and HTTP-dates (all three forms); junk is None, the past 0."""
    got = retry_after_seconds(value, NOW)
    assert got == (None if seconds is None else pytest.approx(seconds))


def test_zoneless_dates_are_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """asctime and "-0000" dates carry no zone: read as UTC, not as local time."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert retry_after_seconds("Tue Nov 14 22:13:27 2023", NOW) == pytest.approx(7.0)
        assert retry_after_seconds("14 Nov 2023 22:13:27 -0000", NOW) == pytest.approx(7.0)
    finally:
        monkeypatch.undo()
        time.tzset()


# ---------------------------------------------------------------- back-off


@given(
    index=st.integers(min_value=0, max_value=10_000),
    base=st.floats(min_value=0.0, max_value=10.0),
    cap=st.floats(min_value=0.0, max_value=60.0),
    rand=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_backoff_stays_within_bounds(index: int, base: float, cap: float, rand: float) -> None:
    """Full jitter: 0 <= delay <= min(cap, base x 2^index), finite for any index."""
    delay = backoff_delay(index, base, cap, rand)
    assert 0.0 <= delay <= cap
    if index < 60:
        assert delay <= base * 2**index + 1e-12


def test_backoff_values() -> None:
    assert backoff_delay(0, 0.1, 2.0, 0.5) == pytest.approx(0.05)
    assert backoff_delay(3, 0.1, 2.0, 0.999) == pytest.approx(0.7992)
    assert backoff_delay(10, 0.1, 2.0, 0.5) == pytest.approx(1.0)  # capped
    assert backoff_delay(10_000, 0.1, 2.0, 0.5) == pytest.approx(1.0)
    assert backoff_delay(2, 0.1, 2.0, 0.0) == 0.0


# ---------------------------------------------------------------- budget


def _steady_load(budget: RetryBudget, *, seconds: int, rate: int, wants: int) -> list[list[int]]:
    """``rate`` requests a second, each asking for ``wants`` retries (an upstream that
    always fails); per second: [requests, retries granted]."""
    per_second = []
    for second in range(seconds):
        granted = 0
        for i in range(rate):
            now = second + i / rate
            budget.record_request(now)
            granted += sum(budget.try_acquire(now) for _ in range(wants))
        per_second.append([rate, granted])
    return per_second


def test_budget_under_steady_load_stays_within_percent_plus_floor() -> None:
    """Against an always-failing upstream, the retries granted in any window stay at
    most percent % of its requests plus min_per_second x window, and the budget is
    spent (the bound is reached, not undercut)."""
    budget = RetryBudget(percent=20, min_per_second=3, window=10)
    seconds = _steady_load(budget, seconds=60, rate=50, wants=2)
    for start in range(0, 51):
        window = seconds[start : start + 10]
        requests = sum(r for r, _ in window)
        retries = sum(g for _, g in window)
        assert retries <= 0.20 * requests + 3 * 10
    total_requests = sum(r for r, _ in seconds)
    total_retries = sum(g for _, g in seconds)
    assert total_retries <= 0.20 * total_requests + 3 * 60
    assert total_retries >= 0.20 * total_requests  # the ratio part is granted


def test_budget_floor_alone_and_recovery() -> None:
    """With no requests recorded only the floor is allowed; it comes back once the
    window has moved on, and nothing older than the window is remembered."""
    budget = RetryBudget(percent=20, min_per_second=1, window=5)
    assert [budget.try_acquire(0.5) for _ in range(6)] == [True] * 5 + [False]
    assert not budget.has_room(4.9)
    assert budget.totals(4.9) == (0, 5)
    assert budget.has_room(5.0)  # the bucket of second 0 left the window
    assert budget.totals(100.0) == (0, 0)
    assert budget.try_acquire(100.0)


def test_budget_has_room_does_not_spend() -> None:
    budget = RetryBudget(percent=0, min_per_second=0.2, window=10)  # 2 retries per window
    assert all(budget.has_room(1.0) for _ in range(10))
    assert budget.try_acquire(1.0)
    assert budget.try_acquire(1.0)
    assert not budget.try_acquire(1.0)
    assert not budget.has_room(1.0)


def test_budget_ratio_follows_requests() -> None:
    """percent % of the requests in the window, the floor at zero."""
    budget = RetryBudget(percent=10, min_per_second=0, window=10)
    assert not budget.has_room(0.0)
    for i in range(100):
        budget.record_request(i / 20)
    assert sum(budget.try_acquire(5.0) for _ in range(20)) == 10


def test_budget_for_policy_and_bad_window(digg: Profile) -> None:
    budget = RetryBudget.for_policy(_policy(digg))
    assert sum(budget.try_acquire(0.0) for _ in range(40)) == 30  # 3/s over 10 s
    with pytest.raises(ValueError, match="window"):
        RetryBudget(20, 3, 0)


# ---------------------------------------------------------------- configuration


def _load(tmp_path: Path, text: str) -> Settings:
    f = tmp_path / "c.yaml"
    f.write_text(text, encoding="utf-8")
    return load_settings(str(f), env={})


ROUTES = """upstream: http://a:1
retry: {enabled: true, backoff: {base: 200ms}, statuses: {retry_404_routes: [/x]}}
routes:
  - {prefix: /orders, upstream: "http://b:2",
     retry: {max_attempts: 5, backoff: {max: 1s}, statuses: {retry_may: false}}}
  - {prefix: /other, upstream: "http://c:3"}
"""


def test_route_retry_lies_over_the_top_level_key_by_key(tmp_path: Path, digg: Profile) -> None:
    """A route's retry: replaces only the keys it gives, nested sections too."""
    s = _load(tmp_path, ROUTES)
    orders, other = s.routes
    assert other.retry is None
    assert orders.retry is not None
    assert orders.retry.enabled
    assert orders.retry.max_attempts == 5
    assert (orders.retry.backoff.base, orders.retry.backoff.max) == (0.2, 1.0)
    assert orders.retry.statuses.retry_404_routes == ("/x",)
    assert (s.retry.max_attempts, s.retry.backoff.max, s.retry.statuses.retry_may) == (3, 2.0, True)
    assert compile_policy(orders.retry, digg).statuses == {408, 500, 503}


def test_statuses_absent_means_the_profile(tmp_path: Path) -> None:
    s = _load(tmp_path, "upstream: http://a:1\nretry: {statuses: {may: [502]}}\n")
    assert s.retry.statuses.must is None
    assert s.retry.statuses.may == (502,)


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("retry: {statuses: {must: [999]}}", "retry.statuses.must", "999"),
        ("retry: {statuses: {may: 502}}", "retry.statuses.may", "502"),
        ("retry: {statuses: {never: [400]}}", "retry.statuses.never", "unknown key"),
        ("retry: {budget: {window: 0s}}", "retry.budget.window", "above zero"),
        ("routes: [{prefix: /a, upstream: 'http://b:2', retry: {max_attempts: 0}}]",
         "routes[0].retry.max_attempts", "got 0"),
        ("routes: [{prefix: /a, upstream: 'http://b:2', retry: {tries: 2}}]",
         "routes[0].retry.tries", "unknown key"),
        ("routes: [{prefix: /a, upstream: 'http://b:2', retry: 5}]",
         "routes[0].retry", "expected a mapping"),
        ("routes: [{prefix: /a, upstream: 'http://b:2', retry: {backoff: {base: soon}}}]",
         "routes[0].retry.backoff.base", "'soon'"),
        ("routes: [{prefix: /a, upstream: 'http://b:2', retry: {statuses: {must: [1]}}}]",
         "routes[0].retry.statuses.must", "got [1]"),
    ],
)  # fmt: skip
def test_retry_config_errors_name_file_key_and_value(
    tmp_path: Path, text: str, where: str, what: str
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("upstream: http://a:1\n" + text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_settings(str(f), env={})
    assert exc.value.source == str(f)
    assert exc.value.where == where
    assert what in exc.value.what


def _handling_row(doc: dict[str, Any], status: int) -> dict[str, Any]:
    return next(r for r in doc["rows"] if r["status"] == status)


@pytest.mark.parametrize(
    ("status", "value", "what"),
    [
        (413, "retry_after_present",
         '"retry_after_present", expected one of retry_after_within_cap, body_held, route_listed'),
        (404, ["route_listed"], "expected one of"),
        (503, "body_held", '"body_held", expected no retry_when on a must row'),
    ],
)  # fmt: skip
def test_handling_retry_when_errors(tmp_path: Path, status: int, value: Any, what: str) -> None:
    """An unknown retry_when, or one on a row that is not conditional, names the
    handling file, the row and the value."""
    folder = user_profile(
        tmp_path, lambda d: _handling_row(d, status).update(retry_when=value), "handling"
    )
    with pytest.raises(ConfigError) as exc:
        load_profile(str(folder))
    assert exc.value.source == str(folder / "handling.yaml")
    assert exc.value.where == f"rows.{status}.retry_when"
    assert what in exc.value.what


def test_retry_when_is_data(tmp_path: Path) -> None:
    """A profile that gives 409 a retry_when and takes 413's away changes the policy."""

    def mutate(doc: dict[str, Any]) -> None:
        _handling_row(doc, 409).update(advice="conditional", retry_when="route_listed")
        del _handling_row(doc, 413)["retry_when"]

    profile = load_profile(str(user_profile(tmp_path, mutate, "handling")))
    policy = _policy(profile)
    assert policy.conditional == {404: "route_listed", 409: "route_listed", 411: "body_held"}
    assert _decide(policy, status=409).retry
    assert _decide(policy, status=413, retry_after="1").outcome is None


def test_check_config_prints_the_retry_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config shows the effective retry policy per route, as comments, so the
    output still loads as a config file."""
    f = tmp_path / "c.yaml"
    f.write_text(ROUTES, encoding="utf-8")
    assert main(["check-config", str(f)]) == 0
    out = capsys.readouterr().out
    policy = [line[2:] for line in out.splitlines() if line.startswith("# ")]
    text = yaml.safe_load("\n".join(policy[policy.index("default:") :]))
    assert text["default"]["statuses"] == [408, 500, 502, 503, 504]
    assert text["default"]["conditional"] == {404: "route_listed", 411: "body_held",
                                              413: "retry_after_within_cap"}  # fmt: skip
    assert text["default"]["backoff"] == {"base": "200ms", "max": "2s", "jitter": "full"}
    assert text["default"]["budget"] == {"percent": 20.0, "min_per_second": 3.0, "window": "10s"}
    assert text["route /orders"]["statuses"] == [408, 500, 503]
    assert text["route /orders"]["max_attempts"] == 5
    assert "route /other" not in text
    again = tmp_path / "again.yaml"
    again.write_text(out, encoding="utf-8")
    assert (
        load_settings(str(again), env={}).routes[0].retry
        == load_settings(str(f), env={}).routes[0].retry
    )


def test_candidate_agrees_with_decide_on_what_can_be_retried(digg: Profile) -> None:
    """``candidate`` is the cheap first question; ``decide`` never retries what it
    rules out, whatever the rest of the facts."""
    from auditproxy.core.retry import candidate, compile_policy, decide
    from auditproxy.settings import load_settings

    flags = {"retry.enabled": True, "upstream": "http://127.0.0.1:1"}
    policy = compile_policy(load_settings(None, env={}, flags=flags).retry, digg)
    for status in [*range(100, 600), None]:
        for kind in (None, "connect", "reset", "timeout", "protocol"):
            if status is not None and kind is not None:
                continue
            decision = decide(
                policy, method="GET", request_headers=(), attempt=1, status=status,
                error_kind=kind, retry_after="1", response_started=False, client_failed=False,
                body_replayable=True, route="/cases/{id}", now_epoch=0.0, deadline_left=60.0,
                rand=0.5, budget_ok=True,
            )  # fmt: skip
            if not candidate(policy, status, kind):
                assert not decision.retry, (status, kind)
                assert decision.outcome is None, (status, kind)
