"""Sum a ``py-spy record -f raw`` profile by where the time goes.

    py-spy record -p PID -d 8 -r 200 -f raw -o proxy.raw    # while wrk loads the proxy
    python tests/perf/profile_groups.py proxy.raw [--top 20]

Each sample is charged to the group of its innermost frame (its self time);
``--top`` also lists the busiest frames.
"""

from __future__ import annotations

import argparse
import collections
from collections.abc import Callable

GROUPS: list[tuple[str, Callable[[str], bool]]] = [
    ("socket writes (responses and requests)",
     lambda f: "HttpProtocol.write " in f or "Connection.write " in f),
    ("event loop (run, epoll, callbacks)",
     lambda f: any(x in f for x in ("asyncio/runners.py", "asyncio/tasks.py",
                                    "asyncio/events.py"))),
    ("http1 server (parser callbacks, framing)",
     lambda f: any(x in f for x in ("http1/server.py", "http1/framing.py", "http1/flow.py",
                                    "auditproxy/traffic.py"))),
    ("http1 upstream pool", lambda f: "http1/client.py" in f),
    ("handler stages (proxy, attempts, deadlines, bodies, forwarding)",
     lambda f: any(x in f for x in ("auditproxy/proxy.py", "attempts.py", "deadlines.py",
                                    "bodies.py", "forwarding.py", "answers.py", "routes.py",
                                    "sinks/__init__.py"))),
    ("audit (engine, checks, header syntax, JSON parse)",
     lambda f: any(x in f for x in ("engine.py", "checks.py", "httpsyntax.py", "json/",
                                    "findings.py", "core/model.py", "core/profile.py"))),
    ("log (structlog, orjson, line writer)",
     lambda f: any(x in f for x in ("structlog", "logconfig.py", "sinks/log.py"))),
    ("metrics (prometheus_client)",
     lambda f: any(x in f for x in ("prometheus_client", "sinks/metrics.py"))),
    ("report, recorder, redaction, HAR",
     lambda f: any(x in f for x in ("report.py", "recorder.py", "redact.py", "har.py"))),
]  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("raw")
    p.add_argument("--top", type=int, default=0)
    args = p.parse_args()
    total = 0
    by_group: collections.Counter[str] = collections.Counter()
    by_frame: collections.Counter[str] = collections.Counter()
    with open(args.raw) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack:
                continue
            n = int(count)
            total += n
            leaf = stack.split(";")[-1]
            by_frame[leaf] += n
            group = next((name for name, match in GROUPS if match(leaf)), "other")
            by_group[group] += n
    print(f"{total} samples")
    for name, n in by_group.most_common():
        print(f"{100 * n / total:5.1f} %  {name}")
    for frame, n in by_frame.most_common(args.top):
        print(f"{100 * n / total:5.1f} %  {frame}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
