"""Every rule row's pass/fail examples from the profile, run through the engine."""

from __future__ import annotations

import re
from typing import Any

import pytest

from auditproxy.core.engine import Profile, audit
from auditproxy.core.findings import Severity
from auditproxy.core.guidelines import example_exchange
from auditproxy.profiles import load_profile

_PROFILE = load_profile("digg")
CASES = [
    (rule.id, kind, i, spec)
    for rule in _PROFILE.rules
    for kind in ("pass", "fail")
    for i, spec in enumerate(rule.examples.get(kind, ()))
]


def test_every_rule_has_pass_and_fail_examples() -> None:
    """Each rule row documents at least one passing and one failing exchange."""
    for rule in _PROFILE.rules:
        assert rule.examples.get("pass"), rule.id
        assert rule.examples.get("fail"), rule.id


@pytest.mark.parametrize(
    ("rule_id", "kind", "index", "spec"), CASES, ids=[f"{r}-{k}{i}" for r, k, i, _ in CASES]
)
def test_rule_example(
    digg_all: Profile, rule_id: str, kind: str, index: int, spec: dict[str, Any]
) -> None:
    """A fail example raises the rule exactly once, a pass example never; no check crashes."""
    findings = audit(example_exchange(spec), digg_all)
    assert not [f for f in findings if f.severity is Severity.ERROR]
    mine = [f for f in findings if f.rule == rule_id]
    if kind == "fail":
        assert len(mine) == 1, findings
        template = _PROFILE.rule(rule_id).message  # type: ignore[union-attr]
        unfilled = [n for n in re.findall(r"\{(\w+)\}", template) if f"{{{n}}}" in mine[0].message]
        assert unfilled == [], mine[0].message  # every placeholder was filled
    else:
        assert mine == []
