"""One real proxy process and one raw upstream per fuzz test module.

At the end of the module the proxy is stopped with SIGTERM: it must exit 0, and
its whole log must hold no error event, exception or traceback."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.fuzz.harness import Answer, ProxyProcess, Upstream, start_upstream, stop_upstream
from tests.soak.accounting import bad_log_lines

# The suite's bounded run; AUDITPROXY_HYPOTHESIS_EXAMPLES raises it (docs/fuzzing.md).
FUZZ = settings(
    max_examples=int(os.environ.get("AUDITPROXY_HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,  # each example bounds its own time (harness.ANSWER_WITHIN)
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


class Fuzz:
    def __init__(self, proxy: ProxyProcess, upstream: Upstream) -> None:
        self.proxy, self.upstream = proxy, upstream

    def __repr__(self) -> str:
        return f"Fuzz(proxy on {self.authority}, upstream on {self.upstream.url})"

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.proxy.port}"

    def assert_sound(self, answer: Answer, what: bytes) -> None:
        """After one example: the process is up, nothing went wrong in its log,
        every request it forwarded was well-formed."""
        context = f"sent {what[:600]!r}\ngot {answer}"
        assert self.proxy.healthy(), f"the proxy is down or /healthz fails\n{context}"
        bad = bad_log_lines(self.proxy.new_log_lines())
        assert not bad, f"the proxy logged errors: {bad}\n{context}"
        rejected, self.upstream.rejected[:] = list(self.upstream.rejected), []
        assert not rejected, f"the proxy forwarded a malformed request: {rejected}\n{context}"


@contextlib.contextmanager
def running(tmp: Path, *, clean_log: bool) -> Iterator[Fuzz]:
    """The upstream and the proxy; at the end the proxy must exit 0 on SIGTERM and,
    with ``clean_log``, its whole log must be free of errors."""
    upstream, thread = start_upstream()
    proxy = ProxyProcess(tmp, upstream.url)
    try:
        yield Fuzz(proxy, upstream)
    finally:
        code = proxy.stop()
        stop_upstream(upstream, thread)
    assert code == 0, f"the proxy exited with {code} on SIGTERM"
    bad = bad_log_lines(proxy.log_path.read_text("utf-8", "replace").splitlines())
    assert not clean_log or not bad, f"the proxy logged errors during the fuzz run: {bad[:5]}"


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    """One proxy for the module's properties (a fresh one per module)."""
    with running(tmp_path_factory.mktemp("fuzz"), clean_log=True) as env:
        yield env
