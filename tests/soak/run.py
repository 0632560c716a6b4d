"""Soak: a real ``auditproxy serve`` under a steady mixed load, then exact accounting.

    scripts/soak [--minutes M | --seconds S] [--rate R] [--seed N] [--keep DIR]

Starts the sample API and a flaky upstream on 127.0.0.1 (tests/soak/upstreams.py),
the proxy in front of them as its own process with recording on (retry off: one
attempt per client request), and sends ``rate`` requests per second of the mix in
tests/soak/mix.py for the given time. The first fifth (at least 5 s) is warm-up.
At the end of warm-up and at the end of the run the load pauses, idle client
connections are closed, and the proxy's RSS (/proc/PID/status VmRSS) and open
descriptors (/proc/PID/fd) are measured. Then the proxy is stopped with SIGTERM
and the checks of tests/soak/accounting.py run. Prints a summary table; exit 0
when every check holds, 1 when one fails, 2 when the set-up failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.soak.accounting import Measured, Samples, checks, table
from tests.soak.client import Outcome, Pool, run_at_rate
from tests.soak.mix import MAX_BODY, plan, routes_yaml
from tests.soak.upstreams import start_upstreams

# Timeouts of the soak's proxy: short, so hanging upstreams cost little.
RESPONSE_HEADERS = 1.5
CLIENT_TIMEOUT = 10.0  # a request with no complete answer by then counts as a hang
RSS_BOUND = 16 * 1024 * 1024  # growth allowed between warm-up and the end
FD_BOUND = 8
CONNECTIONS = 64


def config_text(up: Any, record_dir: Path) -> str:
    return (
        "routes:\n"
        + routes_yaml(up.sample_url, up.flaky_url, up.dead_url)
        + f"record: {{enabled: true, dir: '{record_dir}', sample: 1.0}}\n"
        + "retry: {enabled: false}\n"
        + f"limits: {{max_request_body: {MAX_BODY}}}\n"
        + f"timeouts: {{connect: 1s, response_headers: {RESPONSE_HEADERS}s, idle: 2s,"
        + " total: 5s, client_read: 2s, shutdown_grace: 5s}\n"
        + "log: {level: info, format: json}\n"
    )


def proc_figures(pid: int) -> tuple[int, int]:
    """(RSS in bytes, open descriptors) of process ``pid``."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        body: bytes = resp.read()
        return body.decode()


class Proxy:
    """``auditproxy serve`` as a child process, its log in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log_path = log
        self.config = config
        self.proc: asyncio.subprocess.Process | None = None
        self.port = self.admin = 0

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITPROXY_")}
        with self.log_path.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "auditproxy", "serve", "--config", str(self.config),
                "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                stdout=out, stderr=asyncio.subprocess.STDOUT, env=env,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise SystemExit(f"soak: the proxy exited with {self.proc.returncode}:\n"
                                 + self.log_path.read_text()[-2000:])  # fmt: skip
            for line in self.log_path.read_text().splitlines():
                if '"proxy_started"' in line:
                    started = json.loads(line)
                    self.port = int(started["listen"].rsplit(":", 1)[1])
                    self.admin = int(started["admin"].rsplit(":", 1)[1])
                    return
            await asyncio.sleep(0.1)
        raise SystemExit("soak: the proxy did not start within 20 s")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def metrics(self) -> Samples:
        text = await asyncio.to_thread(_get, f"http://127.0.0.1:{self.admin}/metrics")
        return Samples.parse(text)

    async def stop(self) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                return await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return None


async def _quiet_figures(proxy: Proxy, pool: Pool) -> tuple[int, int]:
    """Idle client connections closed, a moment for the proxy to notice, then measure."""
    pool.close_idle()
    await asyncio.sleep(1.0)
    return proc_figures(proxy.pid)


async def _settled(proxy: Proxy, n: int) -> Samples:
    """/metrics once every exchange is counted and written or dropped (at most 15 s)."""
    deadline = time.monotonic() + 15
    while True:
        s = await proxy.metrics()
        done = s.total("auditproxy_recorded_exchanges_total") + s.total(
            "auditproxy_recorder_dropped_total"
        )
        if (s.total("auditproxy_requests_total") >= n and done >= n) or (
            time.monotonic() > deadline
        ):
            return s
        await asyncio.sleep(0.2)


def recorded_ids(directory: Path) -> list[str]:
    out = []
    for path in sorted(directory.rglob("auditproxy-*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            out.append(json.loads(line)["_audit"]["request_id"])
    return out


async def soak(seconds: float, rate: float, seed: int, work: Path) -> tuple[list[Any], str]:
    """Run the soak in ``work``; (check rows, a line of figures)."""
    warmup = max(5.0, seconds / 5)
    up = await start_upstreams(hang_seconds=RESPONSE_HEADERS + 1.0)
    record_dir = work / "recordings"
    config = work / "auditproxy.yaml"
    config.write_text(config_text(up, record_dir))
    proxy = Proxy(config, work / "proxy.log")
    try:
        await proxy.start()
        n_warm, n_total = int(warmup * rate), int(seconds * rate)
        kinds = plan(n_total, seed)
        ids = [f"soak-{seed}-{i:07d}" for i in range(n_total)]
        host = f"127.0.0.1:{proxy.port}"
        reqs = [k.request(host, rid) for k, rid in zip(kinds, ids, strict=True)]
        outcomes: dict[int, Outcome] = {}
        pool = Pool(proxy.port, CONNECTIONS)

        def done(i: int, o: Outcome) -> None:
            outcomes[i] = o

        await run_at_rate(pool, reqs[:n_warm], rate, CLIENT_TIMEOUT, done)
        warm = await _quiet_figures(proxy, pool)
        t0 = time.perf_counter()
        await run_at_rate(pool, reqs[n_warm:], rate, CLIENT_TIMEOUT, done, first=n_warm)
        elapsed = time.perf_counter() - t0
        end = await _quiet_figures(proxy, pool)
        samples = await _settled(proxy, n_total)
    finally:
        code = await proxy.stop()
        await up.close()
    measured = Measured(
        kinds=kinds, ids=ids, outcomes=outcomes,
        upstream_ids={"sample": up.sample.ids, "flaky": up.flaky.ids},
        upstream_without_id=up.sample.without_id + up.flaky.without_id,
        metrics=samples, recorded_ids=recorded_ids(record_dir),
        log_lines=proxy.log_path.read_text("utf-8", "replace").splitlines(),
        rss=(warm[0], end[0]), fds=(warm[1], end[1]), rss_bound=RSS_BOUND, fd_bound=FD_BOUND,
        exit_code=code,
    )  # fmt: skip
    lat = sorted(o.seconds for i, o in outcomes.items() if kinds[i].name == "sample:get-order")
    p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else float("nan")
    figures = (
        f"requests {n_total} in {warmup:g} s warm-up + {elapsed:.1f} s "
        f"({(n_total - n_warm) / elapsed:.1f}/s); client connections opened {pool.opened}; "
        f"get-order p99 {p99:.1f} ms; RSS {warm[0] / 2**20:.1f} -> {end[0] / 2**20:.1f} MiB; "
        f"fds {warm[1]} -> {end[1]}"
    )
    return checks(measured), figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=3.0, help="length of the run (default 3)")
    p.add_argument("--seconds", type=float, help="length in seconds (overrides --minutes)")
    p.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    p.add_argument("--seed", type=int, default=1, help="seed of the traffic mix (default 1)")
    p.add_argument("--keep", type=Path, help="keep config, log and recordings in this folder")
    args = p.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else args.minutes * 60
    if seconds < 10 or args.rate <= 0:
        p.error("the run needs at least 10 s and a positive --rate")
    with tempfile.TemporaryDirectory(prefix="auditproxy-soak-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows, figures = asyncio.run(soak(seconds, args.rate, args.seed, work))
    print(table(rows))
    print(figures)
    failed = [r.name for r in rows if not r.ok]
    print(f"soak: {'FAILED: ' + ', '.join(failed) if failed else 'every check holds'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
