"""Findings are values: a rule id, a severity and a one-line message."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Severity(StrEnum):
    MUST = "must"  # SKA/SKALL
    SHOULD = "should"  # BÖR
    MAY = "may"  # KAN: information, never non-compliance
    ERROR = "error"  # a check crashed; reported, never blamed on the API

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.MUST: 3, Severity.SHOULD: 2, Severity.MAY: 1, Severity.ERROR: 0}

# What a finding is about; drives which metric family counts it (SPEC §7). ``url``
# findings judge the route template: the report counts them once per route.
Category = Literal[
    "status", "missing_header", "header_syntax", "body", "error_format", "url", "other"
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    category: Category = "other"
    header: str | None = None  # canonical spelling, e.g. "Location", "WWW-Authenticate"

    @property
    def counts(self) -> bool:
        """True when the finding makes the exchange non-compliant."""
        return self.severity in (Severity.MUST, Severity.SHOULD)

    def as_dict(self) -> dict[str, str | None]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "message": self.message,
            "header": self.header,
        }


def is_compliant(findings: tuple[Finding, ...]) -> bool:
    return not any(f.counts for f in findings)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryAdvice:
    advice: Literal["never", "must", "may", "conditional"]
    condition: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"advice": self.advice, "condition": self.condition}
