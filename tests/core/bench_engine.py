"""Per-exchange cost of the rule engine (not a test; run it by hand):

.venv/bin/python -m tests.core.bench_engine
"""

from __future__ import annotations

import json
import timeit

from auditproxy.core.engine import audit, retry_advice
from auditproxy.core.model import Body, Exchange, RequestHead, ResponseHead
from auditproxy.core.routes import RouteLabeler, method_label
from auditproxy.profiles import load_profile

DATE = "Sun, 06 Nov 1994 08:49:37 GMT"
BASE = (("Date", DATE), ("Server", "api"), ("Content-Length", "200"),
        ("Connection", "keep-alive"), ("Cache-Control", "max-age=60"), ("ETag", '"abc"'),
        ("Vary", "Accept"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))  # fmt: skip
LIST = json.dumps({"orders": [{"id": i, "item": "widget", "qty": 2} for i in range(5)]}).encode()
PROBLEM = json.dumps({"type": "about:blank", "title": "Not Found", "status": 404,
                      "detail": "no order 9", "instance": "/orders/9"}).encode()  # fmt: skip


def _ex(method: str, target: str, status: int, ctype: str, body: bytes) -> Exchange:
    route = "/v1/orders/{id}" if target.count("/") > 2 else target  # as the proxy labels it
    return Exchange(
        request=RequestHead(method=method, target=target, headers=(("Accept", "*/*"),)),
        response=ResponseHead(status=status, headers=(*BASE, ("Content-Type", ctype))),
        response_body=Body(size=len(body), sample=body),
        route=route,
    )


CASES = {
    "GET 200 json (compliant)": _ex("GET", "/v1/orders/42", 200, "application/json", LIST),
    "POST 201 without Location": _ex("POST", "/v1/orders", 201, "application/json", LIST),
    "GET 404 problem+json": _ex("GET", "/v1/orders/9", 404, "application/problem+json", PROBLEM),
}


def main(number: int = 20_000) -> None:
    profile = load_profile("digg")
    labeler = RouteLabeler(["/orders/{id}"])
    for name, ex in CASES.items():

        def labels(ex: Exchange = ex) -> tuple[str, str]:
            return labeler.label(ex.request.target), method_label(ex.request.method)

        timings = {
            "audit(all)": min(timeit.repeat(lambda ex=ex: audit(ex, profile), number=number,
                                            repeat=5)),
            "retry_advice": min(timeit.repeat(lambda ex=ex: retry_advice(ex, profile),
                                              number=number, repeat=5)),
            "labels": min(timeit.repeat(labels, number=number, repeat=5)),
        }  # fmt: skip
        cells = "  ".join(f"{k} {v / number * 1e6:6.2f} us" for k, v in timings.items())
        print(f"{name:28s} {cells}")


if __name__ == "__main__":
    main()
