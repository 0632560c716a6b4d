"""Throughput benchmark: direct vs a naive aiohttp pass-through vs auditproxy.

One command, from the repository root::

    .venv/bin/python tests/perf/bench.py                 # 3 x 5 s, 32 connections, small+large
    .venv/bin/python tests/perf/bench.py --record        # adds auditproxy with recording on
    .venv/bin/python tests/perf/bench.py --profile proxy.pstats   # cProfile the proxy

It starts the sample upstream (``GET /v1/bench/small`` ~200 B, ``/v1/bench/large``
just under 64 KiB), the naive pass-through (``naive_proxy.py``) and ``auditproxy serve``
(metrics, classification and JSON logging at the default level, written to a
file) on 127.0.0.1, pins them with ``taskset`` (proxies on CPU 1, upstream and
``wrk`` on CPU 0), runs ``wrk --latency`` against each target in turn, and
prints requests/s, p50/p99 latency and CPU microseconds per request of the
process under test (the upstream for ``direct``, the proxy otherwise) from
``/proc/<pid>/stat``, plus the ratios. Every load run is bounded by
``--duration``; every process it starts is stopped on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SIZES = ("small", "large")
TARGET = 0.8  # auditproxy >= 0.8 x naive throughput (issue 2)
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A setup problem the user can fix; printed without a traceback."""


# --- wrk ------------------------------------------------------------------------


def ensure_wrk() -> str:
    """Path of wrk; installs Debian's package when missing and running as root."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found; installing it with apt-get ...", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
                       check=False, env=env)  # fmt: skip
        path = shutil.which("wrk")
        if path:
            return path
    raise BenchError(
        "wrk is not installed. Install it (Debian/Ubuntu: sudo apt-get install wrk; "
        "macOS: brew install wrk) and run the benchmark again."
    )


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if not m:
        raise ValueError(f"unreadable wrk latency {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


def parse_wrk(text: str) -> WrkResult:
    """Parse ``wrk --latency`` output."""
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    if not (total and rps and p50 and p99):
        raise BenchError(f"could not parse wrk output:\n{text}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=_ms(total.group(2) + total.group(3)) / 1e3,
        rps=float(rps.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sum(int(g) for g in sock.groups()) if sock else 0,
    )


# --- processes ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """utime+stime of ``pid`` and its live descendants (workers), in seconds."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        todo.extend(children.get(p, []))
    return total / CLK_TCK


@dataclass
class Server:
    name: str
    url: str  # base URL that serves /v1/bench/*
    proc: subprocess.Popen[bytes]
    log: Path


class Fleet:
    """Starts the servers under test and stops every one of them on exit."""

    def __init__(self, workdir: Path, pin: bool) -> None:
        self.workdir = workdir
        self.pin = pin
        self.servers: list[Server] = []

    def start(self, name: str, cmd: Sequence[str], url: str, cpu: int,
              env: dict[str, str] | None = None) -> Server:  # fmt: skip
        log = self.workdir / f"{name}.log"
        full = ["taskset", "-c", str(cpu), *cmd] if self.pin else list(cmd)
        with log.open("wb") as fh:
            proc = subprocess.Popen(full, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
                                    stdin=subprocess.DEVNULL,
                                    env={**os.environ, **(env or {})})  # fmt: skip
        server = Server(name, url, proc, log)
        self.servers.append(server)
        return server

    def wait_ready(self, server: Server, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                tail = server.log.read_text(errors="replace")[-2000:]
                raise BenchError(f"{server.name} exited with {server.proc.returncode}:\n{tail}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(server.url + "/v1/bench/small", timeout=2) as r,
            ):
                if r.status == 200:
                    return
            time.sleep(0.1)
        raise BenchError(f"{server.name} did not answer on {server.url} within {timeout:.0f}s")

    def stop_all(self) -> None:
        for s in self.servers:
            if s.proc.poll() is None:
                s.proc.send_signal(signal.SIGTERM)
        for s in self.servers:
            try:
                s.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait()


# --- measurement ---------------------------------------------------------------


@dataclass
class Run:
    target: str
    size: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_req: float
    requests: int
    non_2xx: int
    socket_errors: int


@dataclass
class Summary:
    target: str
    size: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_req: float
    runs: list[Run] = field(default_factory=list)

    @property
    def all_ok(self) -> bool:
        return all(r.non_2xx == 0 and r.socket_errors == 0 and r.requests > 0 for r in self.runs)


def probe(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read()


def run_wrk(wrk: str, url: str, args: argparse.Namespace, pin: bool, seconds: float) -> str:
    cmd = [wrk, "-t1", f"-c{args.connections}", f"-d{seconds:g}s", "--latency",
           f"--timeout={max(2, int(seconds) + 2)}s", url]  # fmt: skip
    if pin:
        cmd = ["taskset", "-c", str(args.load_cpu), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False)
    if out.returncode != 0:
        raise BenchError(f"wrk failed ({out.returncode}): {out.stderr.strip()}")
    return out.stdout


def measure(wrk: str, server: Server, measured_pid: int, size: str,
            args: argparse.Namespace, pin: bool) -> Run:  # fmt: skip
    url = f"{server.url}/v1/bench/{size}"
    before = cpu_seconds(measured_pid)
    result = parse_wrk(run_wrk(wrk, url, args, pin, args.duration))
    cpu = cpu_seconds(measured_pid) - before
    per_req = cpu / result.requests * 1e6 if result.requests else float("nan")
    return Run(server.name, size, result.rps, result.p50_ms, result.p99_ms, per_req,
               result.requests, result.non_2xx, result.socket_errors)  # fmt: skip


def summarise(runs: list[Run]) -> Summary:
    return Summary(
        target=runs[0].target,
        size=runs[0].size,
        rps=statistics.median(r.rps for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        cpu_us_per_req=statistics.median(r.cpu_us_per_req for r in runs),
        runs=runs,
    )


def render(summaries: list[Summary], args: argparse.Namespace, pin: bool) -> str:
    pinning = f"proxy CPU {args.proxy_cpu}, upstream+wrk CPU {args.load_cpu}" if pin else "off"
    lines = [
        f"# {args.repeat} x {args.duration:g}s per target, {args.connections} connections, "
        f"wrk -t1; pinning: {pinning}; medians of the repetitions",
        "",
        "| size | target | req/s | p50 ms | p99 ms | CPU µs/req | vs direct | all 200 |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    by = {(s.size, s.target): s for s in summaries}
    for s in summaries:
        direct = by.get((s.size, "direct"))
        vs = f"{s.rps / direct.rps:.2f}" if direct and direct.rps else "-"
        lines.append(
            f"| {s.size} | {s.target} | {s.rps:,.0f} | {s.p50_ms:.2f} | {s.p99_ms:.2f} "
            f"| {s.cpu_us_per_req:,.0f} | {vs} | {'yes' if s.all_ok else 'NO'} |"
        )
    lines.append("")
    for size in args.sizes:
        naive = by.get((size, "naive"))
        direct = by.get((size, "direct"))
        for name in [t for t in args.targets if t not in ("direct", "naive") and (size, t) in by]:
            s = by[(size, name)]
            if naive and naive.rps:
                ratio = s.rps / naive.rps
                verdict = "meets" if ratio >= TARGET else "BELOW"
                lines.append(f"ratio {name}/naive {size}: {ratio:.2f} "
                             f"({verdict} target {TARGET:.2f})")  # fmt: skip
                cpu = s.cpu_us_per_req - naive.cpu_us_per_req
                lines.append(f"cpu {name}-naive {size}: {cpu:+,.0f} µs/req")
        for name in [t for t in args.targets if t != "direct"]:
            s = by.get((size, name))
            if s and direct and direct.rps:
                lines.append(f"ratio {name}/direct {size}: {s.rps / direct.rps:.2f}")
    for s in summaries:
        status = "all responses 200" if s.all_ok else "ERRORS (non-2xx or socket errors)"
        bad = sum(r.non_2xx + r.socket_errors for r in s.runs)
        lines.append(f"status {s.target} {s.size}: {status}"
                     + (f" ({bad} bad)" if bad else ""))  # fmt: skip
    return "\n".join(lines)


# --- latency and memory -----------------------------------------------------------


@dataclass
class Extra:
    """Per target: latency at one connection, p99 at a fixed rate, RSS idle."""

    target: str
    c1_p50_ms: float = float("nan")
    c1_p99_ms: float = float("nan")
    rate_p99_ms: float = float("nan")
    rate_errors: int = 0
    rss_mib: float = float("nan")
    rss_idle_mib: float = float("nan")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _loadgen(args: argparse.Namespace, pin: bool, *extra: str) -> list[str]:
    cmd = [sys.executable, str(HERE / "loadgen.py"), *extra]
    return ["taskset", "-c", str(args.load_cpu), *cmd] if pin else cmd


def measure_latency(wrk: str, server: Server, args: argparse.Namespace, pin: bool,
                    extra: Extra) -> None:  # fmt: skip
    """wrk at one connection (small body), then the open-loop load at ``--rate``."""
    url = f"{server.url}/v1/bench/small"
    one = argparse.Namespace(**{**vars(args), "connections": 1})
    c1 = parse_wrk(run_wrk(wrk, url, one, pin, args.duration))
    extra.c1_p50_ms, extra.c1_p99_ms = c1.p50_ms, c1.p99_ms
    cmd = _loadgen(args, pin, "rate", url, "--rate", f"{args.rate:g}",
                   "--seconds", f"{args.duration:g}")  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60,
                         check=False)  # fmt: skip
    if out.returncode != 0:
        raise BenchError(f"loadgen rate failed: {out.stderr.strip()}")
    got = json.loads(out.stdout)
    extra.rate_p99_ms, extra.rate_errors = got["p99_ms"], got["errors"]


def measure_idle(server: Server, args: argparse.Namespace, pin: bool, extra: Extra) -> None:
    """RSS of the process before and with ``--idle`` keep-alive connections open."""
    pid = server.proc.pid
    extra.rss_mib = rss_mib(pid)
    cmd = _loadgen(args, pin, "idle", f"{server.url}/v1/bench/small",
                   "--connections", str(args.idle), "--hold", "60")  # fmt: skip
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as gen:
        assert gen.stdout is not None
        assert gen.stdin is not None
        ready = gen.stdout.readline().strip()
        if ready != "ready":
            gen.kill()
            raise BenchError(f"loadgen idle did not get {args.idle} connections up")
        time.sleep(0.5)
        extra.rss_idle_mib = rss_mib(pid)
        gen.stdin.close()
        gen.wait(timeout=30)


def render_extras(extras: list[Extra], args: argparse.Namespace) -> str:
    direct = next((e for e in extras if e.target == "direct"), None)
    lines = [
        "",
        f"# latency: wrk -c1 for {args.duration:g}s (small); p99 of an open-loop load at "
        f"{args.rate:g} req/s; RSS before and with {args.idle} idle keep-alive connections",
        "",
        "| target | c1 p50 ms | added p50 ms | c1 p99 ms | p99 at rate ms | RSS MiB "
        "| RSS idle MiB | idle adds MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in extras:
        added = e.c1_p50_ms - direct.c1_p50_ms if direct and e is not direct else float("nan")
        lines.append(
            f"| {e.target} | {e.c1_p50_ms:.3f} | {added:.3f} | {e.c1_p99_ms:.3f} "
            f"| {e.rate_p99_ms:.2f}{' (errors)' if e.rate_errors else ''} | {e.rss_mib:.1f} "
            f"| {e.rss_idle_mib:.1f} | {e.rss_idle_mib - e.rss_mib:.1f} |"
        )
    return "\n".join(lines).replace("nan", "-")


# --- main --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark direct vs naive proxy vs auditproxy.")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    p.add_argument("--repeat", type=int, default=3, help="repetitions per target (default 3)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--sizes", default="small,large", help="comma list of small,large")
    p.add_argument("--targets", default="direct,naive,lean,auditproxy",
                   help="comma list of direct,naive,lean,auditproxy")  # fmt: skip
    p.add_argument("--record", action="store_true",
                   help="also measure auditproxy with recording on")  # fmt: skip
    p.add_argument("--classify-off", action="store_true",
                   help="also measure auditproxy with every rule disabled in its config "
                   "(target auditproxy-noclassify: the classification's cost)")  # fmt: skip
    p.add_argument("--latency", action="store_true",
                   help="also measure c1 latency and the p99 at a fixed --rate")  # fmt: skip
    p.add_argument("--rate", type=float, default=1000.0, help="req/s of the fixed-rate load")
    p.add_argument("--idle", type=int, default=0, metavar="N",
                   help="also measure RSS with N idle keep-alive connections")  # fmt: skip
    p.add_argument(
        "--all",
        action="store_true",
        help="everything in one run: --record --classify-off --latency --idle 1000",
    )
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per target (0: off)")
    p.add_argument("--proxy-cpu", type=int, default=1)
    p.add_argument("--load-cpu", type=int, default=0)
    p.add_argument("--no-pin", action="store_true", help="do not pin processes with taskset")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    p.add_argument("--profile", type=Path, metavar="PSTATS",
                   help="run auditproxy under cProfile and write its stats here")  # fmt: skip
    p.add_argument("--proxy-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for every auditproxy target (repeatable)")  # fmt: skip
    p.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[,...]",
                   help="also measure auditproxy with this extra environment, as target "
                   "auditproxy-NAME (e.g. quiet:AUDITPROXY_LOG_LEVEL=warning); a NAME ending "
                   "in -noclassify also turns every rule off")  # fmt: skip
    p.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    args = p.parse_args(argv)
    if args.all:
        args.record = args.classify_off = args.latency = True
        args.idle = args.idle or 1000
    args.sizes = [s for s in args.sizes.split(",") if s]
    args.targets = [t for t in args.targets.split(",") if t]
    for s in args.sizes:
        if s not in SIZES:
            p.error(f"--sizes: unknown size {s!r} (expected small, large)")
    for t in args.targets:
        if t not in ("direct", "naive", "lean", "auditproxy"):
            p.error(f"--targets: unknown target {t!r} (expected direct, naive, lean, auditproxy)")
    if args.record:
        args.targets.append("auditproxy-record")
    if args.classify_off:
        args.targets.append("auditproxy-noclassify")
    args.proxy_env = _env_pairs(p, "--proxy-env", args.proxy_env)
    args.variant_env = {}
    for item in args.variant:
        name, sep, pairs = item.partition(":")
        if not sep or not re.fullmatch(r"[a-z0-9-]+", name):
            p.error(f"--variant: {item!r} is not NAME:KEY=VALUE[,KEY=VALUE]")
        target = f"auditproxy-{name}"
        args.variant_env[target] = _env_pairs(p, "--variant", pairs.split(","))
        args.targets.append(target)
    # Recording last: its writer drains a backlog after each run, on the proxies' CPU.
    proxies = [t for t in args.targets if t.startswith("auditproxy")]
    args.targets = [t for t in ("direct", "naive", "lean") if t in args.targets] + sorted(
        proxies, key=lambda t: t == "auditproxy-record"
    )
    if args.duration <= 0 or args.duration > 600:
        p.error(f"--duration: {args.duration} must be in (0, 600] seconds")
    if not 1 <= args.repeat <= 20:
        p.error(f"--repeat: {args.repeat} must be 1..20")
    return args


def _env_pairs(p: argparse.ArgumentParser, flag: str, items: list[str]) -> dict[str, str]:
    for item in items:
        if "=" not in item:
            p.error(f"{flag}: {item!r} is not KEY=VALUE")
    return dict(item.split("=", 1) for item in items)


def _no_rules_config(work: Path) -> Path:
    """A config file that switches off every rule of the built-in profile."""
    from auditproxy.profiles import load_profile

    path = work / "no-rules.yaml"
    lines = ["rules:"] + [f'  "{r.id}": {{enabled: false}}' for r in load_profile("digg").rules]
    path.write_text("\n".join(lines) + "\n")
    return path


def _auditproxy_cmd(upstream: str, port: int, admin: int, record: Path | None,
                    profile: Path | None, config: Path | None = None) -> list[str]:  # fmt: skip
    py = [sys.executable]
    if profile is not None:
        py += ["-m", "cProfile", "-o", str(profile)]
    cmd = [*py, "-m", "auditproxy", "serve", "--upstream", upstream,
           "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}"]  # fmt: skip
    if record is not None:
        cmd += ["--record", str(record)]
    if config is not None:
        cmd += ["--config", str(config)]
    return cmd


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    if keep:
        yield Path(tempfile.mkdtemp(prefix="auditproxy-bench-"))
    else:
        with tempfile.TemporaryDirectory(prefix="auditproxy-bench-") as d:
            yield Path(d)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = ensure_wrk()
    pin = not args.no_pin and shutil.which("taskset") is not None
    if pin and (os.cpu_count() or 1) <= max(args.proxy_cpu, args.load_cpu):
        print(f"only {os.cpu_count()} CPU(s): running without taskset pinning", file=sys.stderr)
        pin = False
    # SIGTERM from a test runner or CI should still stop the servers.
    signal.signal(signal.SIGTERM, _interrupt)
    with _workdir(args.keep_logs) as work:
        fleet = Fleet(work, pin)
        try:
            return _bench(args, wrk, pin, fleet, work)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        finally:
            fleet.stop_all()
            if args.keep_logs:
                print(f"logs kept in {work}", file=sys.stderr)
            if args.profile is not None and args.profile.exists():
                _print_profile(args.profile)


def _print_profile(path: Path) -> None:
    import pstats

    print(f"\n# cProfile of auditproxy ({path}), top 30 by own time")
    pstats.Stats(str(path)).sort_stats("tottime").print_stats(30)


def _bench(args: argparse.Namespace, wrk: str, pin: bool, fleet: Fleet, work: Path) -> int:
    up_port = free_port()
    upstream = fleet.start(
        "direct", [sys.executable, "-m", "auditproxy.sample_upstream", "--port", str(up_port)],
        f"http://127.0.0.1:{up_port}", args.load_cpu,
    )  # fmt: skip
    fleet.wait_ready(upstream)
    servers: dict[str, Server] = {"direct": upstream}
    if "naive" in args.targets:
        port = free_port()
        servers["naive"] = fleet.start(
            "naive", [sys.executable, str(HERE / "naive_proxy.py"), "--upstream", upstream.url,
                      "--port", str(port)], f"http://127.0.0.1:{port}", args.proxy_cpu,
        )  # fmt: skip
    if "lean" in args.targets:
        port = free_port()
        servers["lean"] = fleet.start(
            "lean", [sys.executable, str(HERE / "lean_proxy.py"), "--upstream", upstream.url,
                     "--port", str(port)], f"http://127.0.0.1:{port}", args.proxy_cpu,
        )  # fmt: skip
    for name in [t for t in args.targets if t.startswith("auditproxy")]:
        port, admin = free_port(), free_port()
        record = work / "recordings" if name == "auditproxy-record" else None
        profile = args.profile.resolve() if args.profile and name == "auditproxy" else None
        config = _no_rules_config(work) if name.endswith("-noclassify") else None
        servers[name] = fleet.start(
            name, _auditproxy_cmd(upstream.url, port, admin, record, profile, config),
            f"http://127.0.0.1:{port}", args.proxy_cpu,
            env={**args.proxy_env, **args.variant_env.get(name, {})},
        )  # fmt: skip
    targets = ["direct", *[t for t in args.targets if t != "direct"]]
    for t in targets:
        fleet.wait_ready(servers[t])
    # Same bytes through every path before any load.
    for size in args.sizes:
        ref = probe(f"{upstream.url}/v1/bench/{size}")
        for t in targets:
            got = probe(f"{servers[t].url}/v1/bench/{size}")
            if got[0] != 200 or got[1] != ref[1]:
                raise BenchError(f"{t} returned {got[0]} / {len(got[1])} bytes for /v1/bench/{size}"
                                 f" (direct: {ref[0]} / {len(ref[1])} bytes)")  # fmt: skip
    if args.warmup > 0:
        for t in targets:
            run_wrk(wrk, f"{servers[t].url}/v1/bench/small", args, pin, args.warmup)
    runs: dict[tuple[str, str], list[Run]] = {}
    for size in args.sizes:
        for rep in range(args.repeat):
            for t in targets:  # interleaved, so drift hits every target alike
                measured = servers[t].proc.pid
                run = measure(wrk, servers[t], measured, size, args, pin)
                runs.setdefault((size, t), []).append(run)
                print(f"[{size} {rep + 1}/{args.repeat}] {t:18} {run.rps:10,.0f} req/s  "
                      f"p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms  "
                      f"{run.cpu_us_per_req:6,.0f} µs/req", file=sys.stderr)  # fmt: skip
    summaries = [summarise(runs[(size, t)]) for size in args.sizes for t in targets]
    extras = [Extra(t) for t in targets]
    for extra in extras:
        if args.latency:
            measure_latency(wrk, servers[extra.target], args, pin, extra)
        if args.idle:
            measure_idle(servers[extra.target], args, pin, extra)
    print(render(summaries, args, pin))
    if args.latency or args.idle:
        print(render_extras(extras, args))
    if args.json:
        doc = {"throughput": [{**asdict(s), "all_ok": s.all_ok} for s in summaries],
               "latency_memory": [asdict(e) for e in extras]}  # fmt: skip
        args.json.write_text(json.dumps(doc, indent=2))
    return 0 if all(s.all_ok for s in summaries) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(2)
