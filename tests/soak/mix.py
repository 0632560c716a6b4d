"""The soak's traffic mix: each class of request, what the client must get back,
which upstream (if any) receives it and which upstream error the proxy counts.

Accounting per client request (retry off, so one attempt per request):

- it is counted once in ``auditproxy_requests_total``: with the upstream's status
  when the upstream answered (``midbody``: the head arrived, the body broke, the
  client connection is aborted, the status is still the upstream's 200), else with
  the proxy's own status (502/504 for a failed upstream, 400/404/413/431 when the
  proxy refuses the request);
- it reaches an upstream exactly when ``upstream`` is set: a refused connection
  (``dead``) and a request the proxy refuses reach none;
- it is recorded once (one line) or counted as a recorder drop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from auditproxy.sample_upstream import ENDPOINTS, Endpoint
from tests.soak.client import Request

MAX_BODY = 64 * 1024  # the soak config's limits.max_request_body


@dataclass(frozen=True, slots=True)
class Kind:
    """One class of request in the mix."""

    name: str
    weight: int
    method: str
    target: str
    status: int  # what the client must get
    outcome: str = "complete"  # or "aborted"
    upstream: str | None = None  # "sample" | "flaky" | None (never forwarded)
    error: str | None = None  # the auditproxy_upstream_errors_total kind it adds
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    send_body: bool = True
    # The upstream may receive it twice: an idempotent request on a reused
    # keep-alive connection that closed without a response byte may be sent again
    # once (RFC 9112 §9.3.1); the proxy counts and records it once.
    may_resend: bool = False

    def request(self, host: str, request_id: str) -> Request:
        headers = (("Host", host), ("X-Request-Id", request_id), *self.headers)
        return Request(self.method, self.target, headers, self.body, self.send_body)


def _sample(e: Endpoint) -> Kind:
    return Kind(
        name=f"sample:{e.name}", weight=e.weight, method=e.method, target=e.path,
        status=e.status, upstream="sample", body=e.body or b"",
        headers=tuple(e.request_headers().items()),
    )  # fmt: skip


def _flaky(what: str, weight: int, status: int, **kw: Any) -> Kind:
    return Kind(name=f"flaky:{what}", weight=weight, method="GET", target=f"/flaky/{what}",
                status=status, upstream="flaky", **kw)  # fmt: skip


# The sample API's rows (compliant and not) carry ~2/3 of the traffic by their own
# weights (sum 214); the rest is slow, failing and refused requests.
KINDS: tuple[Kind, ...] = (
    *(_sample(e) for e in ENDPOINTS if e.weight > 0),
    _flaky("ok", 20, 200),
    _flaky("slow", 20, 200),
    _flaky("hang", 4, 504, error="timeout"),
    _flaky("reset", 6, 502, error="reset", may_resend=True),
    Kind(name="flaky:reset-post", weight=4, method="POST", target="/flaky/reset", status=502,
         upstream="flaky", error="reset", body=b"{}",
         headers=(("Content-Type", "application/json"),)),
    _flaky("garbage", 8, 502, error="protocol"),
    _flaky("midbody", 8, 200, outcome="aborted", error="reset"),
    Kind(name="dead:connect", weight=8, method="GET", target="/dead/orders", status=502,
         error="connect"),
    Kind(name="proxy:no-route", weight=6, method="GET", target="/nowhere/42", status=404),
    Kind(name="proxy:foreign-target", weight=6, method="GET",
         target="http://elsewhere.invalid/v1/orders", status=400),
    Kind(name="proxy:body-too-large", weight=6, method="POST", target="/v1/orders", status=413,
         body=b"x" * (MAX_BODY + 1), headers=(("Content-Type", "application/json"),),
         send_body=False),
    Kind(name="proxy:headers-too-large", weight=4, method="GET", target="/v1/orders",
         status=431, headers=(("X-Padding", "p" * (20 * 1024)),)),
)  # fmt: skip


def plan(n: int, seed: int) -> list[Kind]:
    """``n`` kinds drawn by weight, reproducibly."""
    rng = random.Random(seed)
    return rng.choices(KINDS, weights=[k.weight for k in KINDS], k=n)


def routes_yaml(sample: str, flaky: str, dead: str) -> str:
    """The ``routes:`` of the soak config: the sample API, the flaky upstream, the dead one."""
    rows = [("/v1", sample), ("/v2", sample), ("/legacy", sample), ("/flaky", flaky),
            ("/dead", dead)]  # fmt: skip
    return "".join(f"  - {{prefix: {p}, upstream: '{u}'}}\n" for p, u in rows)
