"""The ARP.02 status x method matrix: the data matches rule-catalog §1 and every
row x method gives the expected ARP.02.METHOD-STATUS finding (or none)."""

from __future__ import annotations

import pytest

from auditproxy.core.engine import Profile, audit
from auditproxy.core.findings import Severity

from .conftest import make_exchange

RULE = "ARP.02.METHOD-STATUS"
COLUMNS = ("POST", "GET", "PUT", "DELETE", "PATCH")
# rule-catalog §1, column order POST GET PUT DELETE PATCH
EXPECTED = {
    200: "- X X - -", 201: "X - - - -", 202: "X - X X X", 204: "- - X X X",
    400: "X X X X X", 401: "X X X X X", 403: "X X X X X", 404: "X X X X X",
    405: "X X X X X", 408: "X X X X X", 415: "X X X - X", 422: "X - X - X",
    500: "X X X X X", 501: "X - X X X", 502: "X X X X X", 503: "X X X X X",
    504: "X X X X X",
}  # fmt: skip
METHODS = (*COLUMNS, "HEAD", "OPTIONS")


def _allowed(status: int) -> set[str]:
    cells = EXPECTED[status].split()
    return {m for m, c in zip(COLUMNS, cells, strict=True) if c == "X"}


def test_matrix_data_matches_rule_catalog(digg: Profile) -> None:
    """matrix.yaml holds exactly the reconstructed ARP.02 matrix, no more, no less."""
    assert digg.matrix_methods == COLUMNS
    assert {s: set(m) for s, m in digg.matrix.items()} == {s: _allowed(s) for s in EXPECTED}


CASES = [(s, m) for s in EXPECTED for m in METHODS]


@pytest.mark.parametrize(("status", "method"), CASES, ids=[f"{s}-{m}" for s, m in CASES])
def test_matrix_row(digg: Profile, status: int, method: str) -> None:
    """A listed pair passes; a status listed for other methods is a should finding;
    HEAD is judged as GET; OPTIONS is outside the matrix and never judged."""
    found = [f for f in audit(make_exchange(method, status), digg) if f.rule == RULE]
    as_method = "GET" if method == "HEAD" else method
    if method == "OPTIONS" or as_method in _allowed(status):
        assert found == []
    else:
        assert len(found) == 1
        assert found[0].severity is Severity.SHOULD
        assert found[0].category == "status"
        assert str(status) in found[0].message
        assert method in found[0].message


OUTSIDE = [
    (409, "may"), (410, "may"), (301, "may"), (429, "may"), (304, "may"),
    (300, None), (402, None), (299, None), (418, None), (600, None), (101, None),
]  # fmt: skip


@pytest.mark.parametrize(("status", "severity"), OUTSIDE, ids=[str(s) for s, _ in OUTSIDE])
@pytest.mark.parametrize("method", METHODS)
def test_status_outside_matrix(digg: Profile, status: int, severity: str | None,
                               method: str) -> None:  # fmt: skip
    """Known codes outside the matrix are information (may); unused, unknown,
    out-of-range and 1xx codes are left to their own rules."""
    found = [f for f in audit(make_exchange(method, status), digg) if f.rule == RULE]
    if severity is None or method == "OPTIONS":
        assert found == []
    else:
        assert [f.severity.value for f in found] == [severity]
        assert "is not among the statuses DIGG ARP.02 lists" in found[0].message
