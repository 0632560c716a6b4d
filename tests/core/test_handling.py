"""The handling/retry table: the data matches rule-catalog §2 (plus 304/401 from
the later revision) and every row x method gives the expected retry advice,
with and without Idempotency-Key (rule-catalog §6)."""

from __future__ import annotations

import pytest

from auditproxy.core.engine import NON_IDEMPOTENT_CONDITION, Profile, retry_advice

from .conftest import make_exchange

# status -> (advice, unused) per rule-catalog §2 and §7 items 16-17
EXPECTED = {
    "1xx": ("never", False), "2xx": ("never", False),
    300: ("never", True), 301: ("conditional", False), 302: ("conditional", False),
    303: ("conditional", False), 304: ("never", False), 305: ("never", True),
    306: ("never", True), 307: ("conditional", False),
    400: ("never", False), 401: ("conditional", False), 402: ("never", True),
    403: ("never", False), 404: ("conditional", False), 405: ("never", False),
    406: ("never", False), 408: ("must", False), 409: ("never", False),
    410: ("never", False), 411: ("conditional", False), 413: ("conditional", False),
    414: ("never", False), 415: ("never", False), 417: ("conditional", False),
    426: ("never", False),
    500: ("must", False), 501: ("never", False), 502: ("may", False), 503: ("must", False),
    504: ("may", False), 505: ("never", False),
}  # fmt: skip
METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH")
NON_IDEMPOTENT = {"POST", "PATCH"}
# the statuses each class row is walked with
CLASS_SAMPLES = {"1xx": (100, 101, 103), "2xx": (200, 201, 204, 206)}


def test_handling_data_matches_rule_catalog(digg: Profile) -> None:
    """handling.yaml has exactly the rows of rule-catalog §2 plus 304 and 401."""
    rows = {k: (r.advice, r.unused) for k, r in digg.handling.items()}
    rows |= {f"{k}xx": (r.advice, r.unused) for k, r in digg.handling_classes.items()}
    assert rows == EXPECTED
    for row in digg.handling.values():
        assert row.text_en
        assert row.text_sv or row.status == "417"  # the seed gives 417 no handling text
    assert digg.handling[402].origin == "reconstructed"
    assert digg.handling[401].origin == digg.handling[304].origin == "later-revision"


CASES = [
    (status, method, key)
    for row, _ in EXPECTED.items()
    for status in (CLASS_SAMPLES[row] if isinstance(row, str) else (row,))
    for method in METHODS
    for key in (False, True)
]


@pytest.mark.parametrize(
    ("status", "method", "with_key"),
    CASES,
    ids=[f"{s}-{m}-{'key' if k else 'nokey'}" for s, m, k in CASES],
)
def test_handling_row(digg: Profile, status: int, method: str, with_key: bool) -> None:
    """Idempotent methods keep the table's advice; POST/PATCH without an
    Idempotency-Key turn must/may into conditional; with one they keep it."""
    row = f"{status // 100}xx" if status < 300 else status
    base, _ = EXPECTED[row]
    headers = {"Idempotency-Key": '"8e03978e"'} if with_key else {}
    advice = retry_advice(make_exchange(method, status, request_headers=headers), digg)
    if base in ("must", "may") and method in NON_IDEMPOTENT and not with_key:
        assert advice.advice == "conditional"
        assert advice.condition == NON_IDEMPOTENT_CONDITION
    else:
        assert advice.advice == base
    if advice.advice == "conditional" and base == "conditional":
        assert advice.condition  # conditional advice always says when


def test_retry_after_is_part_of_the_condition(digg: Profile) -> None:
    """A Retry-After on a retryable answer is carried into the advice's condition."""
    ex = make_exchange("GET", 503, {"Retry-After": "120"})
    advice = retry_advice(ex, digg)
    assert advice.advice == "must"
    assert advice.condition is not None
    assert "Retry-After: 120" in advice.condition


@pytest.mark.parametrize("status", [429, 308, 422, 599, 0, 999])
def test_status_without_a_row_is_never(digg: Profile, status: int) -> None:
    """Codes the handling table does not list get 'never' with a reason."""
    advice = retry_advice(make_exchange("GET", status), digg)
    assert advice.advice == "never"
    assert advice.condition is not None
    assert "not in the digg handling table" in advice.condition
