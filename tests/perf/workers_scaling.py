"""How `serve --workers 2` scales, measured at a fixed rate on a small machine.

    .venv/bin/python tests/perf/workers_scaling.py [--rate 1000] [--seconds 8]

A throughput run needs a free core per worker plus cores for the upstream and the
load generator; a 2-core machine has neither. So the same open-loop load (a fixed
rate, tests/perf/loadgen.py) goes through one worker and then through two, and the
CPU the proxy's processes spend per request is measured from /proc for each. With
one free core per worker, the capacity of N workers is N cores / (CPU seconds per
request with N workers): the printed scaling is 2 x (CPU per request with one
worker) / (CPU per request with two). It shows what two workers cost beyond one
(the shared metrics files, the report publishing, the kernel spreading the
connections); it assumes the cores are free, which this script cannot check.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.perf.bench import Fleet, _workdir, cpu_seconds, free_port  # noqa: E402


def _load(url: str, rate: float, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(HERE / "loadgen.py"), "rate", url, "--rate", str(rate),
         "--seconds", str(seconds), "--connections", "64"],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=8.0)
    args = p.parse_args()
    rows = []
    with _workdir(False) as work:
        fleet = Fleet(work, pin=False)
        try:
            up_port = free_port()
            upstream = fleet.start(
                "upstream", [sys.executable, "-m", "auditproxy.sample_upstream", "--port",
                             str(up_port)], f"http://127.0.0.1:{up_port}", 0,
            )  # fmt: skip
            fleet.wait_ready(upstream)
            for workers in (1, 2):
                port, admin = free_port(), free_port()
                proxy = fleet.start(
                    f"workers-{workers}",
                    [sys.executable, "-m", "auditproxy", "serve", "--upstream", upstream.url,
                     "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}",
                     "--workers", str(workers)],
                    f"http://127.0.0.1:{port}", 0,
                )  # fmt: skip
                fleet.wait_ready(proxy)
                url = f"{proxy.url}/v1/bench/small"
                _load(url, args.rate / 2, 2.0)  # warm-up
                time.sleep(0.5)
                before = cpu_seconds(proxy.proc.pid)
                result = _load(url, args.rate, args.seconds)
                spent = cpu_seconds(proxy.proc.pid) - before
                count = result["count"]
                rows.append((workers, count, result.get("errors", 0), spent / count * 1e6,
                             result["p99_ms"]))  # fmt: skip
                proxy.proc.terminate()
                proxy.proc.wait(timeout=20)
        finally:
            fleet.stop_all()
    print(f"# fixed rate {args.rate:g} req/s for {args.seconds:g} s, 200 B bodies, everything on")
    print("| workers | requests | errors | proxy CPU µs/req | p99 ms |")
    print("|---:|---:|---:|---:|---:|")
    for workers, count, errors, cpu, p99 in rows:
        print(f"| {workers} | {count:,.0f} | {errors:.0f} | {cpu:.0f} | {p99:.2f} |")
    one, two = rows[0][3], rows[1][3]
    print(
        f"\nscaling with one free core per worker: 2 x {one:.0f} / {two:.0f} = {2 * one / two:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
