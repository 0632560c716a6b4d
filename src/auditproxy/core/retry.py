"""Retry on behalf of clients (SPEC §10): the policy and the decisions, pure.

``compile_policy`` turns the ``retry:`` settings and the profile's handling table
into a :class:`RetryPolicy` once (at start-up and on reload, one per route that
has its own ``retry:``). After each failed attempt the handler asks ``decide``
whether to try again and after how long; time (``now_epoch``, ``deadline_left``),
the random draw (``rand``) and the budget's verdict (``budget_ok``) come in as
values, so the decision is a function of its arguments.

What is retried: the handling table's ``must`` rows and (unless ``retry_may:
false``) its ``may`` rows, or the ``statuses.must``/``statuses.may`` lists that
replace them; ``conditional`` rows only when their ``retry_when`` condition holds
(data in the profile); never anything else. Upstream errors of kind ``connect``,
``reset`` and ``timeout`` before any response byte reached the client are retried
too. A ``timeout`` (no head within the per-try timeout) may mean the upstream got
and applied the request, so, like a 504, it is retried under the same method rule;
``protocol`` errors (a malformed answer) are not retried, so the defect stays
visible. The method rule applies to every reason alike, connect errors included:
only ``methods`` (RFC 9110 §9.2.2 idempotent ones by default), and POST/PATCH
only with the idempotency key header.

``RetryBudget`` is the ratio budget of Finagle and Linkerd: retries may be at
most ``percent`` % of the requests seen in a sliding window, plus
``min_per_second`` for every second of it; unlike a concurrency budget it does
not shrink during an outage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol

from auditproxy.core.profile import Profile, RetryWhen

# RFC 9110 §9.2.2: PUT, DELETE and the safe methods (§9.2.1) are idempotent.
IDEMPOTENT_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE")
# Non-idempotent methods that may be retried when they carry the idempotency key.
KEYED_METHODS = ("POST", "PATCH")
# Upstream error kinds (SPEC §5) retried when no response byte reached the client.
RETRIED_ERROR_KINDS = frozenset({"connect", "reset", "timeout"})
ATTEMPTS_HEADER = "X-Audit-Attempts"  # added to the final response when attempts > 1

Outcome = Literal["retried", "exhausted", "budget_denied", "not_retriable", "retry_after_too_long"]


# ---------------------------------------------------------------- configuration
# What compile_policy reads from the retry settings (auditproxy.settings'
# RetrySettings has these fields; the core does not import the settings module).


class StatusesConfig(Protocol):
    @property
    def must(self) -> tuple[int, ...] | None: ...
    @property
    def may(self) -> tuple[int, ...] | None: ...
    @property
    def retry_may(self) -> bool: ...
    @property
    def retry_404_routes(self) -> tuple[str, ...]: ...


class BackoffConfig(Protocol):
    @property
    def base(self) -> float: ...
    @property
    def max(self) -> float: ...


class BudgetConfig(Protocol):
    @property
    def percent(self) -> float: ...
    @property
    def min_per_second(self) -> float: ...
    @property
    def window(self) -> float: ...


class RetryConfig(Protocol):
    @property
    def enabled(self) -> bool: ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def statuses(self) -> StatusesConfig: ...
    @property
    def methods(self) -> tuple[str, ...]: ...
    @property
    def idempotency_key_header(self) -> str: ...
    @property
    def backoff(self) -> BackoffConfig: ...
    @property
    def respect_retry_after(self) -> bool: ...
    @property
    def max_retry_after(self) -> float: ...
    @property
    def per_try_timeout(self) -> float: ...
    @property
    def deadline(self) -> float: ...
    @property
    def max_buffered_body(self) -> int: ...
    @property
    def budget(self) -> BudgetConfig: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """The effective retry policy of one route (durations in seconds)."""

    enabled: bool
    max_attempts: int  # total attempts, the first included
    statuses: frozenset[int]  # retried whenever the request may be retried
    conditional: Mapping[int, RetryWhen]  # retried only when the condition holds
    listed_routes: frozenset[str]  # route labels for ``route_listed`` (retry_404_routes)
    methods: tuple[str, ...]
    idempotency_key_header: str
    backoff_base: float
    backoff_max: float
    respect_retry_after: bool
    max_retry_after: float
    per_try_timeout: float
    deadline: float
    max_buffered_body: int
    budget_percent: float
    budget_min_per_second: float
    budget_window: float


def _table_columns(
    profile: Profile,
) -> tuple[frozenset[int], frozenset[int], dict[int, RetryWhen]]:
    """(must, may, conditional status -> retry_when) over statuses 100-599, each
    by its own handling row or its class row (2xx)."""
    must: set[int] = set()
    may: set[int] = set()
    conditional: dict[int, RetryWhen] = {}
    for status in range(100, 600):
        row = profile.handling_row(status)
        if row is None:
            continue
        if row.advice == "must":
            must.add(status)
        elif row.advice == "may":
            may.add(status)
        elif row.advice == "conditional" and row.retry_when is not None:
            conditional[status] = row.retry_when
    return frozenset(must), frozenset(may), conditional


def compile_policy(retry: RetryConfig, profile: Profile) -> RetryPolicy:
    """The policy for ``retry`` (the top-level settings, or a route's own, which
    already lie over the top level key by key) over the ``profile``'s table."""
    st = retry.statuses
    must, may, conditional = _table_columns(profile)
    must = frozenset(st.must) if st.must is not None else must
    may = frozenset(st.may) if st.may is not None else may
    return RetryPolicy(
        enabled=retry.enabled,
        max_attempts=retry.max_attempts,
        statuses=must | may if st.retry_may else must,
        # a status the config lists under must/may is no longer conditional
        conditional={s: c for s, c in conditional.items() if s not in must | may},
        listed_routes=frozenset(st.retry_404_routes),
        methods=tuple(m.upper() for m in retry.methods),
        idempotency_key_header=retry.idempotency_key_header,
        backoff_base=retry.backoff.base,
        backoff_max=retry.backoff.max,
        respect_retry_after=retry.respect_retry_after,
        max_retry_after=retry.max_retry_after,
        per_try_timeout=retry.per_try_timeout,
        deadline=retry.deadline,
        max_buffered_body=retry.max_buffered_body,
        budget_percent=retry.budget.percent,
        budget_min_per_second=retry.budget.min_per_second,
        budget_window=retry.budget.window,
    )


# ---------------------------------------------------------------- timing


def retry_after_seconds(value: str | None, now_epoch: float) -> float | None:
    """Seconds to wait by a ``Retry-After`` value: delay-seconds, or an HTTP-date
    (read by the standard library's RFC 5322 date parser, which also takes the
    obsolete forms) relative to ``now_epoch``; a date in the past gives 0.
    ``None`` when absent or not a valid value."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # asctime and "-0000" carry no zone; HTTP dates are UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_epoch)


_MAX_DOUBLINGS = 62  # 2**62 * any sane base is far past any cap; keeps the power finite


def backoff_delay(retry_index: int, base: float, cap: float, rand: float) -> float:
    """Full-jitter exponential back-off: ``rand * min(cap, base * 2**retry_index)``
    for the ``retry_index``-th retry (0 for the first), ``rand`` in [0, 1)."""
    doublings = min(max(retry_index, 0), _MAX_DOUBLINGS)
    return rand * min(cap, base * 2.0**doublings)


# ---------------------------------------------------------------- budget

_MAX_BUCKETS = 3600


class RetryBudget:
    """Retries allowed: ``percent`` % of the requests recorded in the last
    ``window`` seconds plus ``min_per_second * window``, counted in buckets of
    about one second (bounded memory, at most 3,600 buckets).

    One per process and policy. ``record_request`` once per client request (not
    per attempt); ``has_room`` asks without spending, ``try_acquire`` spends one
    retry when there is room. ``now`` is a monotonic clock's seconds."""

    __slots__ = ("_floor", "_ids", "_n", "_ratio", "_requests", "_retries", "_width")

    def __init__(self, percent: float, min_per_second: float, window: float) -> None:
        if window <= 0:
            raise ValueError("the budget window must be above zero")
        self._n = max(1, min(math.ceil(window), _MAX_BUCKETS))
        self._width = window / self._n
        self._ratio = percent / 100.0
        self._floor = min_per_second * window
        self._ids = [-1] * self._n
        self._requests = [0] * self._n
        self._retries = [0] * self._n

    @classmethod
    def for_policy(cls, policy: RetryPolicy) -> RetryBudget:
        return cls(policy.budget_percent, policy.budget_min_per_second, policy.budget_window)

    def _bucket(self, now: float) -> int:
        index = int(now // self._width)
        slot = index % self._n
        if self._ids[slot] != index:
            self._ids[slot] = index
            self._requests[slot] = 0
            self._retries[slot] = 0
        return slot

    def record_request(self, now: float) -> None:
        self._requests[self._bucket(now)] += 1

    def totals(self, now: float) -> tuple[int, int]:
        """(requests, retries) in the window ending at ``now``."""
        index = int(now // self._width)
        requests = retries = 0
        for slot, bucket_id in enumerate(self._ids):
            if index - self._n < bucket_id <= index:
                requests += self._requests[slot]
                retries += self._retries[slot]
        return requests, retries

    def has_room(self, now: float) -> bool:
        requests, retries = self.totals(now)
        return retries + 1 <= self._ratio * requests + self._floor

    def try_acquire(self, now: float) -> bool:
        if not self.has_room(now):
            return False
        self._retries[self._bucket(now)] += 1
        return True


# ---------------------------------------------------------------- the decision


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """``retry``: send the request again after ``delay`` seconds. ``reason`` is the
    status code as text or the error kind; ``outcome`` is the SPEC §7 label to
    count (``None``: nothing retryable happened, count nothing)."""

    retry: bool
    delay: float
    reason: str
    outcome: Outcome | None


def has_header(headers: Iterable[tuple[str, str]], name: str) -> bool:
    """True when a field ``name`` (any case) with a non-empty value is present."""
    wanted = name.lower()
    return any(k.lower() == wanted and v.strip() for k, v in headers)


def method_allows_retry(
    policy: RetryPolicy, method: str, request_headers: Iterable[tuple[str, str]]
) -> bool:
    """The method rule: one of ``policy.methods``, or POST/PATCH with the
    idempotency key header. Also tells the handler whether buffering the request
    body for a replay is worth it."""
    if method in policy.methods:
        return True
    return method in KEYED_METHODS and has_header(request_headers, policy.idempotency_key_header)


@dataclass(frozen=True, slots=True)
class _Facts:
    """What a condition of the handling table may look at."""

    retry_after: float | None
    body_replayable: bool
    route: str
    listed_routes: frozenset[str]


CONDITIONS: Mapping[RetryWhen, Callable[[_Facts], bool]] = {
    # the cap itself is checked for every status (retry_after_too_long)
    "retry_after_within_cap": lambda f: f.retry_after is not None,
    "body_held": lambda f: f.body_replayable,
    "route_listed": lambda f: f.route in f.listed_routes,
}


def candidate(policy: RetryPolicy, status: int | None, error_kind: str | None) -> bool:
    """Could this outcome be retried at all (before its conditions and the safety
    rules are weighed)? False for almost every answer, so the caller can skip
    gathering what ``decide`` needs."""
    if status is None:
        return error_kind in RETRIED_ERROR_KINDS
    return status in policy.statuses or status in policy.conditional


def _retryable(
    policy: RetryPolicy, status: int | None, error_kind: str | None, facts: _Facts
) -> bool:
    """Is what happened one of the failures the policy retries?"""
    if status is None:
        return error_kind in RETRIED_ERROR_KINDS
    if status in policy.statuses:
        return True
    condition = policy.conditional.get(status)
    return condition is not None and CONDITIONS[condition](facts)


def _stop(reason: str, outcome: Outcome | None) -> RetryDecision:
    return RetryDecision(False, 0.0, reason, outcome)


def decide(
    policy: RetryPolicy,
    *,
    method: str,
    request_headers: Iterable[tuple[str, str]],
    attempt: int,
    status: int | None,
    error_kind: str | None,
    retry_after: str | None,
    response_started: bool,
    client_failed: bool,
    body_replayable: bool,
    route: str,
    now_epoch: float,
    deadline_left: float,
    rand: float,
    budget_ok: bool,
) -> RetryDecision:
    """Whether to send the request again after attempt number ``attempt`` (1 for
    the first) ended with ``status`` (its ``Retry-After`` value in ``retry_after``)
    or with an upstream error of ``error_kind``.

    ``response_started``: a byte of this response already reached the client.
    ``client_failed``: the client's own request failed (too large, too slow, gone).
    ``body_replayable``: the whole request body is held for a replay.
    ``route``: the route label (as in metrics). ``now_epoch``: wall-clock seconds,
    for an HTTP-date. ``deadline_left``: seconds left of the exchange's deadline.
    ``rand``: uniform in [0, 1) for the jitter. ``budget_ok``: the budget has room
    (``RetryBudget.has_room``; spend it with ``try_acquire`` when retrying)."""
    reason = str(status) if status is not None else (error_kind or "unknown")
    wait = retry_after_seconds(retry_after, now_epoch) if status is not None else None
    facts = _Facts(wait, body_replayable, route, policy.listed_routes)
    if not policy.enabled or not _retryable(policy, status, error_kind, facts):
        return _stop(reason, None)
    if client_failed or response_started or not body_replayable:
        return _stop(reason, "not_retriable")
    if not method_allows_retry(policy, method, request_headers):
        return _stop(reason, "not_retriable")
    if attempt >= policy.max_attempts:
        return _stop(reason, "exhausted")
    if wait is not None and wait > policy.max_retry_after:
        return _stop(reason, "retry_after_too_long")
    if wait is not None and policy.respect_retry_after:
        delay = wait
    else:
        delay = backoff_delay(attempt - 1, policy.backoff_base, policy.backoff_max, rand)
    if delay >= deadline_left:
        return _stop(reason, "exhausted")
    if not budget_ok:
        return _stop(reason, "budget_denied")
    return RetryDecision(True, delay, reason, "retried")
