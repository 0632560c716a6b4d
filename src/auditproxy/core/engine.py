"""The rule engine: audit(exchange, profile) -> findings. Pure, never raises.

PLACEHOLDER INTERFACE: the real engine replaces the bodies below, keeping the
signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from auditproxy.core.findings import Finding, RetryAdvice
from auditproxy.core.model import Exchange

Phase = Literal["head", "body", "all"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """A loaded guideline profile (see auditproxy.profiles for loading YAML)."""

    name: str
    version: str


def audit(exchange: Exchange, profile: Profile, *, phase: Phase = "all") -> tuple[Finding, ...]:
    """Findings for one exchange. ``head`` runs only checks that need no body."""
    return ()


def retry_advice(exchange: Exchange, profile: Profile) -> RetryAdvice:
    """The handling-table advice for the exchange's status, adjusted for idempotency."""
    return RetryAdvice(advice="never")
