"""`auditproxy serve --workers N`: N proxy processes sharing one traffic port.

The parent process only supervises. It creates a fresh directory for
prometheus-client's multiprocess mode and exports ``PROMETHEUS_MULTIPROC_DIR``
*before* any worker starts, so every worker's metric values live in shared
files from its first import of prometheus_client on. Workers are started with
the ``spawn`` method (a clean interpreter, no forked event loop or threads) and
each runs the ordinary ``serve()`` with ``reuse_port=True``: the kernel spreads
incoming connections over the processes bound to the port (SO_REUSEPORT).

- Metrics: every worker exposes a :class:`MultiProcessRegistry`, which reads all
  workers' files, so ``/metrics`` shows the sum over the workers. Worker 0 owns
  the configured admin port; the others bind their admin app to an ephemeral
  port on 127.0.0.1 that nobody is told about.
- Recordings: worker ``i`` records to ``<record.dir>/worker-<i>/``, so no two
  processes ever write the same file; ``auditproxy audit DIR`` reads them all.
- ``/-/report``: each worker publishes its report into the metrics folder and the
  one asked merges them (:mod:`auditproxy.report_share`).
- Signals: SIGTERM/SIGINT are forwarded as SIGTERM (each worker drains gracefully
  within ``timeouts.shutdown_grace``), SIGHUP is forwarded for a config reload.
- A worker that dies on its own stops the whole group (exit 1, or 2 when it
  died of a config error) so the supervisor (Docker, Kubernetes, systemd)
  restarts a consistent set instead of running with less capacity unnoticed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from auditproxy import eventloop
from auditproxy.core.errors import ConfigError
from auditproxy.settings import HostPort, Settings

ENV_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
EXIT_CONFIG = 2
_STOP_MARGIN = 5.0  # seconds on top of shutdown_grace before a worker is killed

log = structlog.get_logger("auditproxy.workers")


def worker_settings(settings: Settings, index: int) -> Settings:
    """The settings worker ``index`` runs with: its own recording folder, and
    the admin port only for worker 0."""
    record = dataclasses.replace(
        settings.record, dir=str(Path(settings.record.dir) / f"worker-{index}")
    )
    admin = settings.admin if index == 0 else HostPort("127.0.0.1", 0)
    return dataclasses.replace(settings, record=record, admin=admin)


def make_multiprocess_registry(path: str) -> Any:
    """A registry that accepts the worker's own metric families (their values
    are written to the shared files) but collects from every worker's files.

    Built lazily so that importing this module never imports prometheus_client
    before ``PROMETHEUS_MULTIPROC_DIR`` is set.
    """
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    class MultiProcessRegistry(CollectorRegistry):
        def __init__(self) -> None:
            super().__init__(auto_describe=False)
            self._aggregate = MultiProcessCollector(None, path=path)  # type: ignore[no-untyped-call]

        def collect(self) -> Iterator[Any]:
            yield from self._aggregate.collect()  # type: ignore[no-untyped-call]

    return MultiProcessRegistry()


def _worker_main(
    index: int, settings: Settings, metrics_dir: str, config: str | None, flags: dict[str, object]
) -> None:
    """Entry point of one worker process (runs in a fresh interpreter)."""
    os.environ[ENV_MULTIPROC_DIR] = metrics_dir
    from auditproxy.logconfig import configure_logging
    from auditproxy.server import loader_for, serve

    configure_logging(settings.log.level, settings.log.format)
    structlog.contextvars.bind_contextvars(worker=index, pid=os.getpid())
    # Re-setting build_info clears its old labels first; in multiprocess mode that
    # is a no-op with a warning (the gauge's "max" mode makes the stale set harmless).
    warnings.filterwarnings("ignore", message="Clearing labels has not been implemented")
    load = loader_for(config, flags)

    def reload() -> Settings:  # SIGHUP: same file/env/flags, same per-worker overrides
        return worker_settings(load(), index)

    registry = make_multiprocess_registry(metrics_dir)
    try:
        source = settings.config_file or "<config>"
        main = serve(settings, reuse_port=True, registry=registry, loader=reload)
        eventloop.run(main, settings.event_loop, source)
    except ConfigError as exc:
        print(f"auditproxy: worker {index}: config error: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    except OSError as exc:
        print(f"auditproxy: worker {index}: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


class _Supervisor:
    def __init__(
        self,
        settings: Settings,
        count: int,
        metrics_dir: str,
        config: str | None,
        flags: dict[str, object],
    ) -> None:
        self.settings = settings
        self.config = config
        self.flags = flags
        self.count = count
        self.metrics_dir = metrics_dir
        self.procs: list[BaseProcess] = []
        self.stop_signal: int | None = None
        self.pending_hup = False

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        for i in range(self.count):
            args = (i, worker_settings(self.settings, i), self.metrics_dir, self.config, self.flags)
            proc = ctx.Process(target=_worker_main, args=args, name=f"auditproxy-worker-{i}")
            proc.start()
            self.procs.append(proc)
        log.info("workers_started", workers=self.count,
                 pids=[p.pid for p in self.procs], listen=str(self.settings.listen),
                 admin=str(self.settings.admin))  # fmt: skip

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_signal = signum

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self.pending_hup = True

    def _signal_all(self, signum: int) -> None:
        for p in self.procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signum)

    def supervise(self) -> int:
        """Wait until a stop signal or a worker's unexpected exit; stop everyone."""
        previous = {
            sig: signal.signal(sig, handler)
            for sig, handler in (
                (signal.SIGTERM, self._on_stop),
                (signal.SIGINT, self._on_stop),
                (signal.SIGHUP, self._on_hup),
            )
        }
        code = 0
        try:
            while self.stop_signal is None:
                if self.pending_hup:
                    self.pending_hup = False
                    log.info("workers_reload", pids=[p.pid for p in self.procs])
                    self._signal_all(signal.SIGHUP)
                sentinels = [p.sentinel for p in self.procs]
                multiprocessing.connection.wait(sentinels, timeout=0.5)
                dead = [p for p in self.procs if p.exitcode is not None]
                if dead and self.stop_signal is None:
                    p = dead[0]
                    log.error("worker_exited", worker=p.name, pid=p.pid, exitcode=p.exitcode)
                    code = EXIT_CONFIG if p.exitcode == EXIT_CONFIG else 1
                    break
            if self.stop_signal is not None:
                log.info("workers_stopping", signal=signal.Signals(self.stop_signal).name)
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def stop(self) -> None:
        """SIGTERM every live worker, wait out the grace period, then kill."""
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.timeouts.shutdown_grace + _STOP_MARGIN
        for p in self.procs:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in self.procs:
            if p.is_alive():
                log.warning("worker_killed", worker=p.name, pid=p.pid)
                p.kill()
                p.join(5)
        from prometheus_client.multiprocess import mark_process_dead

        for p in self.procs:
            if p.pid is not None:
                mark_process_dead(p.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
        log.info("workers_stopped", exitcodes=[p.exitcode for p in self.procs])


def run_workers(
    settings: Settings,
    count: int,
    *,
    config: str | None = None,
    flags: dict[str, object] | None = None,
) -> int:
    """Run ``count`` worker processes until SIGTERM/SIGINT; the process exit code.

    ``config`` and ``flags`` are what ``settings`` was loaded from; each worker
    re-reads them the same way on SIGHUP.
    """
    if count < 1:
        raise ConfigError("<flags>", "--workers", f"got {count}, expected an integer >= 1")
    metrics_dir = tempfile.mkdtemp(prefix="auditproxy-metrics-")
    previous = os.environ.get(ENV_MULTIPROC_DIR)
    os.environ[ENV_MULTIPROC_DIR] = metrics_dir
    try:
        supervisor = _Supervisor(settings, count, metrics_dir, config, dict(flags or {}))
        supervisor.start()
        return supervisor.supervise()
    finally:
        if previous is None:
            os.environ.pop(ENV_MULTIPROC_DIR, None)
        else:
            os.environ[ENV_MULTIPROC_DIR] = previous
        shutil.rmtree(metrics_dir, ignore_errors=True)
