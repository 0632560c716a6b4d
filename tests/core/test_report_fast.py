"""The hot-path shortcuts give the same results as the full computation: the report's
lazily folded clean exchanges and the cached retry advice."""

from __future__ import annotations

from auditproxy.core.engine import Profile, audit, retry_advice
from auditproxy.core.findings import Finding, RetryAdvice, Severity
from auditproxy.core.model import Exchange
from auditproxy.core.report import Report

from .conftest import IMF_DATE, make_exchange

OK = {"Date": IMF_DATE, "Content-Type": "application/json"}


def _cases() -> list[Exchange]:
    return [
        make_exchange("GET", 200, OK, b"{}", route="/a"),
        make_exchange("GET", 201, {"Date": IMF_DATE}, route="/a"),
        make_exchange("POST", 503, {"Retry-After": "5"}, route="/b"),
        make_exchange("GET", 200, OK, b"{}", route="/b"),
        make_exchange("BREW", 418, {"Date": IMF_DATE}, route="/pot"),
        make_exchange("GET", 200, OK, b"{}", route="/a"),
    ]


def test_clean_exchanges_fold_into_the_same_summary(digg: Profile) -> None:
    """Counting clean exchanges lazily gives the summary a finding-by-finding count gives."""
    report = Report(digg)
    for ex in _cases():
        report.add(ex, audit(ex, digg), retry_advice(ex, digg))
    # The same exchanges, each with a finding that does not count against compliance,
    # take the full path; apart from the rule table, every figure must match.
    note = Finding(rule="NOTE", severity=Severity.MAY, message="n", category="x")
    full = Report(digg)
    for ex in _cases():
        findings = audit(ex, digg) or (note,)
        full.add(ex, findings, retry_advice(ex, digg))
    lazy_d, full_d = report.as_dict(), full.as_dict()
    assert lazy_d["totals"] == full_d["totals"]
    assert lazy_d["method_status"] == full_d["method_status"]
    assert lazy_d["retry_advice"] == full_d["retry_advice"]
    assert {k: (v["exchanges"], v["noncompliant"]) for k, v in lazy_d["routes"].items()} == {
        k: (v["exchanges"], v["noncompliant"]) for k, v in full_d["routes"].items()
    }
    assert lazy_d["totals"]["exchanges"] == 6
    assert report.exchanges == 6


def test_summary_can_be_asked_for_repeatedly(digg: Profile) -> None:
    """Exchanges added after a summary are counted on top of the earlier ones."""
    report = Report(digg)
    ex = make_exchange("GET", 200, OK, b"{}", route="/a")
    report.add(ex, (), retry_advice(ex, digg))
    assert report.as_dict()["totals"]["exchanges"] == 1
    report.add(ex, (), retry_advice(ex, digg))
    d = report.as_dict()
    assert d["totals"] == {"exchanges": 2, "compliant": 2, "noncompliant": 0}
    assert d["routes"]["/a"]["exchanges"] == 2
    assert d["retry_advice"]["200"] == {"never": 2}
    assert report.compliant == 2


def test_advice_by_idempotency_and_retry_after(digg: Profile) -> None:
    """A POST without Idempotency-Key is conditional; a Retry-After value reaches the condition."""
    get = make_exchange("GET", 503, {})
    post = make_exchange("POST", 503, {})
    keyed = make_exchange("POST", 503, {}, request_headers={"Idempotency-Key": "k"})
    first = [retry_advice(ex, digg) for ex in (get, post, keyed)]
    assert first[1].advice == "conditional"
    assert first[0].advice == first[2].advice != "conditional"
    with_after = retry_advice(make_exchange("GET", 503, {"Retry-After": "7"}), digg)
    assert with_after.condition is not None
    assert "honour Retry-After: 7" in with_after.condition
    assert isinstance(with_after, RetryAdvice)
