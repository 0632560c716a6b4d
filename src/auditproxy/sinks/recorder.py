"""JSONL recorder. PLACEHOLDER INTERFACE: the real recorder replaces the body,
keeping the constructor and method signatures."""

from __future__ import annotations

from typing import Any

from auditproxy.core.engine import Profile
from auditproxy.core.findings import Finding, RetryAdvice
from auditproxy.core.model import Exchange
from auditproxy.sinks.metrics import Metrics


class Recorder:
    def __init__(self, settings: Any, metrics: Metrics, profile: Profile) -> None:
        self.settings = settings
        self.metrics = metrics
        self.profile = profile

    async def start(self) -> None:
        """Open the file and start the writer task."""

    async def submit(
        self, exchange: Exchange, findings: tuple[Finding, ...], advice: RetryAdvice
    ) -> None:
        """Queue one exchange; never blocks (unless on_full: block)."""

    async def close(self) -> None:
        """Flush everything queued, fsync, close."""

    @property
    def writable(self) -> bool:
        return True
