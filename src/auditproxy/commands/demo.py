"""`auditproxy demo`: the sample orders API behind the proxy, a burst of traffic, a report.

Everything runs in one event loop on 127.0.0.1: the sample upstream
(:mod:`auditproxy.sample_upstream`), the real proxy (``serve``) with recording
on, and a bounded client that walks the sample API's endpoint table. After the
burst it prints the proxy's own compliance report (admin ``/-/report``) and the
URLs to look at, then keeps serving until Ctrl-C (``--once``: exits).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from auditproxy.core.errors import ConfigError
from auditproxy.core.report import render_text
from auditproxy.logconfig import configure_logging
from auditproxy.progress import ProgressBar
from auditproxy.sample_upstream import (
    ENDPOINTS,
    MISSING_FROM,
    ROUTE_TEMPLATES,
    Endpoint,
    make_sample_app,
)
from auditproxy.settings import RouteSettings, Settings, load_settings

DEFAULT_REQUESTS = 400
CONCURRENCY = 8
REQUEST_TIMEOUT = 10.0  # seconds per request
BURST_DEADLINE = 120.0  # seconds for the whole burst, whatever N is
LOG_NAME = "proxy.log"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once",
        action="store_true",
        help="exit after printing the report instead of serving until Ctrl-C",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=DEFAULT_REQUESTS,
        metavar="N",
        help=f"requests in the traffic burst (default {DEFAULT_REQUESTS})",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        metavar="P",
        help="proxy port on 127.0.0.1 (default: a free port)",
    )
    parser.add_argument(
        "--admin-port",
        type=int,
        default=0,
        metavar="P",
        help="admin port (/metrics, /-/report) (default: a free port)",
    )
    parser.add_argument(
        "--upstream-port",
        type=int,
        default=0,
        metavar="P",
        help="sample upstream port (default: a free port)",
    )
    parser.add_argument(
        "--record-dir",
        default="demo-recordings",
        metavar="DIR",
        help="where the proxy records exchanges (default ./demo-recordings)",
    )
    parser.add_argument("--seed", type=int, default=2024,
                        help="random seed of the traffic mix (default 2024)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    _validate(args)
    args.record_path = Path(args.record_dir).resolve()
    try:
        args.record_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("<flags>", "--record-dir", f"{args.record_dir}: {exc}") from exc
    # The proxy logs at its default level into a file: the report is the demo's output.
    with (args.record_path / LOG_NAME).open("a", encoding="utf-8") as log_file:
        configure_logging("info", "json", stream=log_file)
        return asyncio.run(_demo(args))


def _validate(args: argparse.Namespace) -> None:
    if not 1 <= args.requests <= 100_000:
        raise ConfigError("<flags>", "--requests", f"{args.requests} is not in 1..100000")
    for flag in ("port", "admin_port", "upstream_port"):
        value = getattr(args, flag)
        if not 0 <= value <= 65535:
            raise ConfigError("<flags>", f"--{flag.replace('_', '-')}",
                              f"{value} is not a TCP port (0-65535)")  # fmt: skip
    ports = [p for p in (args.port, args.admin_port, args.upstream_port) if p]
    if len(ports) != len(set(ports)):
        raise ConfigError("<flags>", "--port/--admin-port/--upstream-port",
                          f"{ports} must be different ports")  # fmt: skip


# --- the traffic plan ------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    endpoint: Endpoint
    path: str


def plan(n: int, seed: int) -> list[Call]:
    """``n`` calls: every demo endpoint once (while ``n`` allows), then a weighted mix.

    Rows that accept any existing order id get a random one, so the proxy sees
    many concrete paths collapse into one route label.
    """
    rng = random.Random(seed)
    rows = [e for e in ENDPOINTS if e.weight > 0]
    first = rows[:]
    rng.shuffle(first)
    chosen = first[:n] + rng.choices(
        rows, weights=[e.weight for e in rows], k=max(0, n - len(rows))
    )
    calls = []
    for row in chosen:
        path = row.path
        if row.varies_id:
            path = re.sub(r"/\d+", f"/{rng.randrange(1, MISSING_FROM)}", path, count=1)
        calls.append(Call(row, path))
    return calls


# --- progress -----------------------------------------------------------------------


class Progress:
    """Requests sent and failed, drawn as the shared progress bar (on a terminal only)."""

    def __init__(self, bar: ProgressBar) -> None:
        self.bar = bar
        self.done = 0
        self.failed = 0

    def advance(self, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        self.bar.update(self.done, f"{self.done}/{self.bar.total}  errors {self.failed}")

    def summary(self) -> str:
        """The line printed once the burst is over (on a terminal or not)."""
        self.bar.clear()
        frac = self.done / self.bar.total if self.bar.total else 1.0
        return (f"  traffic: {self.done}/{self.bar.total} requests sent ({frac:.0%}), "
                f"{self.failed} errors")  # fmt: skip


async def drive(base: str, calls: Sequence[Call], progress: Progress,
                concurrency: int = CONCURRENCY) -> Counter[str]:  # fmt: skip
    """Send ``calls`` through ``base`` with bounded concurrency; tally "METHOD status"."""
    tally: Counter[str] = Counter()
    queue = iter(calls)
    deadline = time.monotonic() + BURST_DEADLINE
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)

    async def worker(session: aiohttp.ClientSession) -> None:
        for call in queue:
            if time.monotonic() > deadline:
                tally["skipped (deadline)"] += 1
                progress.advance(False)
                continue
            row = call.endpoint
            headers = {**row.request_headers(), "User-Agent": "auditproxy-demo"}
            try:
                async with session.request(
                    row.method, base + call.path, data=row.body, headers=headers,
                    allow_redirects=False,
                ) as resp:  # fmt: skip
                    await resp.read()
                    tally[f"{row.method} {resp.status}"] += 1
                    progress.advance(True)
            except (aiohttp.ClientError, TimeoutError) as exc:
                tally[f"{row.method} error {type(exc).__name__}"] += 1
                progress.advance(False)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     auto_decompress=False) as session:  # fmt: skip
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return tally


# --- the servers ------------------------------------------------------------------


async def start_upstream(port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(make_sample_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError("<flags>", "--upstream-port", f"cannot listen on {port}: {exc}") from exc
    bound = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{bound}"


def proxy_settings(upstream: str, port: int, admin: int, record_dir: Path) -> Settings:
    """Settings for the proxy: the sample upstream with its route templates, recording on."""
    settings = load_settings(
        None,
        flags={
            "upstream": upstream,
            "listen": f"127.0.0.1:{port}",
            "admin": f"127.0.0.1:{admin}",
            "record.enabled": True,
            "record.dir": str(record_dir),
        },
    )
    route = RouteSettings(prefix="/", upstream=upstream, templates=ROUTE_TEMPLATES)
    return dataclasses.replace(settings, upstream=None, routes=(route,))


async def fetch_report(admin: str) -> str:
    """The proxy's compliance report (admin ``/-/report``), rendered as text."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"{admin}/-/report") as resp,
    ):
        resp.raise_for_status()
        data = await resp.json()
    return render_text(data)


# --- the command -----------------------------------------------------------------


async def _demo(args: argparse.Namespace) -> int:
    from auditproxy.server import Serving, start

    record_dir: Path = args.record_path
    out, err = sys.stdout, sys.stderr
    upstream_runner, upstream = await start_upstream(args.upstream_port)
    serving: Serving | None = None
    try:
        settings = proxy_settings(upstream, args.port, args.admin_port, record_dir)
        try:
            serving = await start(settings, registry=CollectorRegistry())
        except OSError as exc:
            raise ConfigError("<flags>", "--port/--admin-port", str(exc)) from exc
        proxy = "http://{}:{}".format(*serving.address)
        admin = "http://{}:{}".format(*serving.admin_address)
        print(f"auditproxy demo: sample API on {upstream}, proxy on {proxy}", file=err)

        calls = plan(args.requests, args.seed)
        print(f"  sending {len(calls)} requests ({CONCURRENCY} at a time) through the proxy",
              file=err)  # fmt: skip
        progress = Progress(ProgressBar(err, len(calls), label="  traffic "))
        tally = await drive(proxy, calls, progress)
        print(progress.summary(), file=err, flush=True)
        print(file=out)
        print(await fetch_report(admin), file=out)
        seen = ", ".join(f"{k} x{v}" for k, v in sorted(tally.items()))
        print(f"Traffic sent (method, status as the client saw it): {seen}", file=out)
        print(file=out)
        print(f"Proxy:      {proxy}/v1/orders", file=out)
        print(f"Metrics:    {admin}/metrics", file=out)
        print(f"Report:     {admin}/-/report   (findings: {admin}/-/findings?limit=20)", file=out)
        print(f"Upstream:   {upstream}/v1/orders", file=out)
        print(f"Recording:  {record_dir}  (proxy log: {record_dir / LOG_NAME})", file=out)
        print(f"Re-audit:   auditproxy audit {record_dir}", file=out, flush=True)
        if not args.once:
            print("\nServing until Ctrl-C ...", file=out, flush=True)
            await _until_interrupted()
        return 0
    finally:
        if serving is not None:
            await serving.close()  # first: flushes the recorder
        await upstream_runner.cleanup()


async def _until_interrupted() -> None:
    """Wait for Ctrl-C or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
