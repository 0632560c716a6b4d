"""Traffic generator for the docker-compose stack.

Walks the sample API's endpoint table (``auditproxy.sample_upstream.ENDPOINTS``,
weighted like ``auditproxy demo``) through the proxy forever, at a modest rate,
so the dashboards show live compliant and non-compliant traffic. Standard
library only, so it runs in the auditproxy image as is:

    python traffic.py --target http://auditproxy:8080 --rate 20
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import urllib.error
import urllib.request

from auditproxy.sample_upstream import ENDPOINTS


def send(target: str, method: str, path: str, body: bytes | None) -> int:
    """One request; the status code, or 0 when the proxy could not be reached."""
    req = urllib.request.Request(target + path, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)
    except (OSError, ValueError):
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="http://auditproxy:8080", help="proxy base URL")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second (> 0)")
    parser.add_argument("--count", type=int, default=0, help="stop after N requests (0 = never)")
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error(f"--rate: {args.rate} is not > 0")
    rows = [e for e in ENDPOINTS if e.weight > 0]
    weights = [e.weight for e in rows]
    target = args.target.rstrip("/")
    sent = failed = 0
    while args.count == 0 or sent < args.count:
        e = random.choices(rows, weights)[0]
        status = send(target, e.method, e.path, e.body)
        sent += 1
        failed += status == 0
        if sent % 500 == 0:
            print(f"traffic: {sent} requests sent, {failed} not answered", flush=True)
        time.sleep(1.0 / args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
