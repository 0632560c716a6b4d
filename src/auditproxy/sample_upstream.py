"""A small "orders" API with compliant and deliberately non-compliant endpoints.

It is the upstream of ``auditproxy demo``, of the benchmark and of the tests.
``ENDPOINTS`` is the single list of what the API does: for each row the request
to send, the status it answers, what it demonstrates and the rule ids the
auditor is expected to report (empty for compliant rows). Demo traffic and the
tests both walk this table.

The API is stateless: ids below ``MISSING_FROM`` exist, the others do not, so
any number of concurrent clients always see the same answers.

Run it on its own with::

    python -m auditproxy.sample_upstream --host 127.0.0.1 --port 8000

Cases the stack cannot produce: a 204 (or a HEAD answer) *with* content. The
aiohttp server drops the body of such responses and the aiohttp client never
reads one, so through this stack the engine could not see it anyway; the rule
(RFC9110-204-NO-CONTENT) is covered by the engine's own tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

MISSING_FROM = 900  # order ids >= this do not exist (404)

# Private marker: the listed headers are removed after aiohttp has added its
# defaults (Date, Content-Type), just before the head is written.
_STRIP = "X-Sample-Strip"

JSON = "application/json"
PROBLEM = "application/problem+json"


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """One row of the sample API: a request, its answer and the expected findings."""

    name: str  # short stable id (test ids, demo output)
    method: str
    path: str  # a concrete request target; `{id}` rows accept any existing id
    route: str  # the route template the proxy should label it with
    status: int
    demonstrates: str
    rules: tuple[str, ...] = ()  # rule ids the auditor must report; () = compliant
    body: bytes | None = None  # request body (JSON)
    weight: int = 0  # share of demo traffic; 0 = never sent by the demo
    varies_id: bool = True  # the demo may substitute another existing order id

    @property
    def compliant(self) -> bool:
        return not self.rules


ENDPOINTS: tuple[Endpoint, ...] = (
    # --- compliant -------------------------------------------------------
    Endpoint(name="list-orders", method="GET", path="/orders", route="/orders", status=200,
             demonstrates="collection as JSON with Date", weight=30, varies_id=False),
    Endpoint(name="get-order", method="GET", path="/orders/42", route="/orders/{id}",
             status=200, demonstrates="single resource with a quoted ETag", weight=40),
    Endpoint(name="get-order-missing", method="GET", path="/orders/987", route="/orders/{id}",
             status=404, demonstrates="404 as problem+json with all five FEL.01 members",
             weight=8, varies_id=False),
    Endpoint(name="create-order", method="POST", path="/orders", route="/orders", status=201,
             demonstrates="201 with Location of the new order",
             body=b'{"item": "widget", "quantity": 2}', weight=12, varies_id=False),
    Endpoint(name="create-order-bad-json", method="POST", path="/orders", route="/orders",
             status=400, demonstrates="400 problem+json for a body that is not JSON",
             body=b'{"item": "widget", ', weight=3, varies_id=False),
    Endpoint(name="create-order-invalid", method="POST", path="/orders", route="/orders",
             status=422, demonstrates="422 problem+json for a failed validation",
             body=b'{"quantity": 0}', weight=3, varies_id=False),
    Endpoint(name="replace-order", method="PUT", path="/orders/42", route="/orders/{id}",
             status=200, demonstrates="PUT answered 200 with the new representation",
             body=b'{"item": "widget", "quantity": 3}', weight=6),
    Endpoint(name="update-order", method="PATCH", path="/orders/42", route="/orders/{id}",
             status=204, demonstrates="PATCH answered 204 without content",
             body=b'{"quantity": 5}', weight=6),
    Endpoint(name="delete-order", method="DELETE", path="/orders/42", route="/orders/{id}",
             status=204, demonstrates="DELETE answered 204", weight=5),
    Endpoint(name="start-export", method="POST", path="/orders/exports",
             route="/orders/exports", status=202,
             demonstrates="202 for an async export, with Location of the job",
             body=b'{"format": "csv"}', weight=3, varies_id=False),
    Endpoint(name="get-export", method="GET", path="/orders/exports/7",
             route="/orders/exports/{id}", status=200,
             demonstrates="the export job's status", weight=3),
    Endpoint(name="bench-small", method="GET", path="/bench/small", route="/bench/small",
             status=200, demonstrates="benchmark: ~200 B JSON", varies_id=False),
    Endpoint(name="bench-large", method="GET", path="/bench/large", route="/bench/large",
             status=200, demonstrates="benchmark: just under 64 KiB of JSON", varies_id=False),
    # --- deliberately non-compliant --------------------------------------
    Endpoint(name="add-line-no-location", method="POST", path="/orders/42/lines",
             route="/orders/{id}/lines", status=201, demonstrates="201 without Location",
             rules=("ARP.03.LOCATION-201",), body=b'{"sku": "A-1", "quantity": 1}', weight=4),
    Endpoint(name="start-import-no-location", method="POST", path="/orders/imports",
             route="/orders/imports", status=202, demonstrates="202 without Location",
             rules=("ARP.04.LOCATION-202",), body=b'{"source": "s3://bucket/orders.csv"}',
             weight=2, varies_id=False),
    Endpoint(name="delete-collection-no-allow", method="DELETE", path="/orders",
             route="/orders", status=405, demonstrates="405 without Allow",
             rules=("RFC9110-405-ALLOW",), weight=2, varies_id=False),
    Endpoint(name="delete-line-200", method="DELETE", path="/orders/42/lines/3",
             route="/orders/{id}/lines/{line}", status=200,
             demonstrates="DELETE answered 200 (ARP.02 lists 202/204)",
             rules=("ARP.02.METHOD-STATUS",), weight=3),
    Endpoint(name="get-receipt-201", method="GET", path="/orders/42/receipt",
             route="/orders/{id}/receipt", status=201, demonstrates="GET answered 201",
             rules=("ARP.02.METHOD-STATUS",), weight=3),
    Endpoint(name="pay-402", method="POST", path="/orders/42/payment",
             route="/orders/{id}/payment", status=402,
             demonstrates="402, marked 'not used by us' in the handling table",
             rules=("RETRY.UNUSED-STATUS",), body=b'{"amount": 100}', weight=2),
    Endpoint(name="invoice-401-no-challenge", method="GET", path="/orders/42/invoice",
             route="/orders/{id}/invoice", status=401, demonstrates="401 without WWW-Authenticate",
             rules=("RFC9110-401-WWW-AUTHENTICATE",), weight=3),
    Endpoint(name="attachments-html-error", method="GET", path="/orders/42/attachments",
             route="/orders/{id}/attachments", status=404,
             demonstrates="an error with a text/html body", rules=("FEL.02.MEDIA-TYPE",),
             weight=3),
    Endpoint(name="lock-403-thin-problem", method="PUT", path="/orders/42/lock",
             route="/orders/{id}/lock", status=403,
             demonstrates="problem+json missing type, detail and instance",
             rules=("FEL.01.MEMBERS",), body=b'{"locked": true}', weight=2),
    Endpoint(name="address-problem-status-mismatch", method="PUT", path="/orders/42/address",
             route="/orders/{id}/address", status=422,
             demonstrates="problem+json whose status member says 400",
             rules=("RFC9457-STATUS-MATCH",), body=b'{"zip": "x"}', weight=2),
    Endpoint(name="events-no-date", method="GET", path="/orders/42/events",
             route="/orders/{id}/events", status=200, demonstrates="200 without Date",
             rules=("RFC9110-DATE-PRESENT",), weight=3),
    Endpoint(name="history-rfc3339-date", method="GET", path="/orders/42/history",
             route="/orders/{id}/history", status=200,
             demonstrates="Date in RFC 3339 instead of IMF-fixdate",
             rules=("RFC9110-DATE-FORMAT",), weight=3),
    Endpoint(name="revision-bad-etag", method="GET", path="/orders/42/revision",
             route="/orders/{id}/revision", status=200, demonstrates="unquoted ETag",
             rules=("RFC9110-ETAG-SYNTAX",), weight=3),
    Endpoint(name="notes-no-content-type", method="GET", path="/orders/42/notes",
             route="/orders/{id}/notes", status=200, demonstrates="content without Content-Type",
             rules=("RFC9110-CONTENT-TYPE-PRESENT",), weight=2),
    Endpoint(name="tracking-broken-json", method="GET", path="/orders/42/tracking",
             route="/orders/{id}/tracking", status=200,
             demonstrates="application/json body that does not parse",
             rules=("RFC8259-JSON-PARSE",), weight=3),
    Endpoint(name="shipping-cors-wildcard-credentials", method="GET",
             path="/orders/42/shipping", route="/orders/{id}/shipping", status=200,
             demonstrates="Access-Control-Allow-Origin * with credentials",
             rules=("FETCH-CORS-WILDCARD-CREDENTIALS", "ARP.01.CORS-WILDCARD"), weight=2),
    Endpoint(name="refund-503-no-retry-after", method="POST", path="/orders/42/refund",
             route="/orders/{id}/refund", status=503, demonstrates="503 without Retry-After",
             rules=("RFC9110-503-RETRY-AFTER",), body=b'{"amount": 100}', weight=2),
    Endpoint(name="brew-418", method="GET", path="/orders/42/brew", route="/orders/{id}/brew",
             status=418, demonstrates="418, in neither guideline table",
             rules=("STATUS.UNKNOWN",), weight=2),
    Endpoint(name="summary-299", method="GET", path="/orders/42/summary",
             route="/orders/{id}/summary", status=299, demonstrates="unregistered status 299",
             rules=("STATUS.UNKNOWN",), weight=2),
)  # fmt: skip

# Route templates for the proxy's route labeller: literal paths before `{id}` ones.
ROUTE_TEMPLATES: tuple[str, ...] = tuple(
    sorted({e.route for e in ENDPOINTS}, key=lambda r: (r.count("{"), r))
)


def endpoint(name: str) -> Endpoint:
    """The row called ``name`` (KeyError when there is none)."""
    for e in ENDPOINTS:
        if e.name == name:
            return e
    raise KeyError(name)


# --- response helpers ----------------------------------------------------------


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type=JSON,
        headers=headers,
    )


def problem(
    request: web.Request,
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    doc_status: int | None = None,
    members: Sequence[str] = ("type", "title", "status", "detail", "instance"),
    **extra: Any,
) -> web.Response:
    """An RFC 9457 problem document; ``members`` picks which FEL.01 members appear."""
    full: dict[str, Any] = {
        "type": f"https://api.example.com/problems/{slug}",
        "title": title,
        "status": status if doc_status is None else doc_status,
        "detail": detail,
        "instance": request.path,
    }
    doc = {k: v for k, v in full.items() if k in members}
    doc.update(extra)
    return web.Response(body=json.dumps(doc).encode(), status=status, content_type=PROBLEM)


def _order(order_id: int, quantity: int = 2) -> dict[str, Any]:
    return {
        "id": order_id,
        "item": "widget",
        "quantity": quantity,
        "state": "open",
        "created": "2024-05-01T08:30:00Z",
        "links": {"self": f"/orders/{order_id}"},
    }


def _order_id(request: web.Request) -> int:
    return int(request.match_info["id"])


async def _strip_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: remove the headers a handler asked to strip."""
    names = response.headers.pop(_STRIP, None)
    if names:
        for name in names.split(","):
            response.headers.popall(name.strip(), None)


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    return json.loads(raw) if raw else None


# --- compliant handlers ----------------------------------------------------------


async def list_orders(request: web.Request) -> web.Response:
    return _json({"items": [_order(i) for i in range(1, 6)], "limit": 5, "offset": 0})


async def get_order(request: web.Request) -> web.Response:
    oid = _order_id(request)
    if oid >= MISSING_FROM:
        return problem(request, 404, "Order not found", f"There is no order {oid}.",
                       slug="order-not-found")  # fmt: skip
    return _json(_order(oid), headers={"ETag": f'"{oid}-1"'})


async def create_order(request: web.Request) -> web.Response:
    try:
        data = await _read_json(request)
    except ValueError:
        return problem(request, 400, "Malformed request body",
                       "The request body is not valid JSON.", slug="malformed-body")  # fmt: skip
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("item"), str)
        or not isinstance(data.get("quantity"), int)
        or data["quantity"] < 1
    ):
        return problem(request, 422, "Invalid order", "An order needs an item and a quantity "
                       "of at least 1.", slug="invalid-order",
                       errors=[{"pointer": "/item", "detail": "required"}])  # fmt: skip
    return _json(_order(1001, data["quantity"]), status=201, headers={"Location": "/orders/1001"})


async def replace_order(request: web.Request) -> web.Response:
    await request.read()
    return _json(_order(_order_id(request), 3))


async def update_order(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=204)


async def delete_order(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def start_export(request: web.Request) -> web.Response:
    await request.read()
    location = {"Location": "/orders/exports/7"}
    return _json({"id": 7, "state": "queued"}, status=202, headers=location)


async def get_export(request: web.Request) -> web.Response:
    return _json({"id": _order_id(request), "state": "running", "progress": 0.4})


# Precomputed benchmark bodies: ~200 B and just under 64 KiB of JSON.
_BENCH_SMALL = json.dumps(
    {"id": 42, "item": "widget", "quantity": 2, "state": "open",
     "created": "2024-05-01T08:30:00Z", "customer": {"id": 7, "name": "Ada Lovelace"},
     "links": {"self": "/orders/42", "lines": "/orders/42/lines"}, "note": "x" * 16},
    separators=(",", ":"),
).encode()  # fmt: skip


def _large_body(limit: int = 64 * 1024) -> bytes:
    """The longest JSON list of orders not over ``limit`` bytes.

    Staying within 64 KiB keeps the whole body inside the proxy's default audit
    sample, so the benchmark pays for the full JSON check, not a skipped one.
    """
    one = len(json.dumps(_order(1000), separators=(",", ":"))) + 1
    count = limit // one + 1
    while True:
        body = json.dumps({"items": [_order(1000 + i) for i in range(count)]},
                          separators=(",", ":")).encode()  # fmt: skip
        if len(body) <= limit:
            return body
        count -= 1


_BENCH_LARGE = _large_body()


async def bench_small(request: web.Request) -> web.Response:
    return web.Response(body=_BENCH_SMALL, content_type=JSON)


async def bench_large(request: web.Request) -> web.Response:
    return web.Response(body=_BENCH_LARGE, content_type=JSON)


# --- non-compliant handlers ----------------------------------------------------------


async def add_line(request: web.Request) -> web.Response:
    await request.read()
    return _json({"line": 3, "sku": "A-1", "quantity": 1}, status=201)  # no Location


async def start_import(request: web.Request) -> web.Response:
    await request.read()
    return _json({"state": "queued"}, status=202)  # no Location


async def delete_collection(request: web.Request) -> web.Response:
    # aiohttp's own 405 would carry Allow; this one forgets it.
    detail = "The order collection cannot be deleted."
    return problem(request, 405, "Method not allowed", detail, slug="method-not-allowed")


async def delete_line(request: web.Request) -> web.Response:
    return _json({"deleted": True, "line": int(request.match_info["line"])})


async def get_receipt(request: web.Request) -> web.Response:
    oid = _order_id(request)
    return _json({"order": oid, "receipt": "R-1"}, status=201,
                 headers={"Location": f"/orders/{oid}/receipt"})  # fmt: skip


async def pay(request: web.Request) -> web.Response:
    await request.read()
    return problem(request, 402, "Payment required", "The order is not paid.",
                   slug="payment-required")  # fmt: skip


async def get_invoice(request: web.Request) -> web.Response:
    return problem(request, 401, "Unauthorized", "Log in to see invoices.",
                   slug="unauthorized")  # fmt: skip


async def get_attachments(request: web.Request) -> web.Response:
    return web.Response(
        status=404,
        text="<html><body><h1>404 Not Found</h1></body></html>",
        content_type="text/html",
    )


async def lock_order(request: web.Request) -> web.Response:
    await request.read()
    return problem(request, 403, "Forbidden", "", slug="forbidden", members=("title", "status"))


async def change_address(request: web.Request) -> web.Response:
    await request.read()
    return problem(request, 422, "Invalid address", "The postal code is not valid.",
                   slug="invalid-address", doc_status=400)  # fmt: skip


async def get_events(request: web.Request) -> web.Response:
    return _json({"events": [{"type": "created", "at": "2024-05-01T08:30:00Z"}]},
                 headers={_STRIP: "Date"})  # fmt: skip


async def get_history(request: web.Request) -> web.Response:
    return _json({"history": []}, headers={"Date": "2024-05-01T08:30:00Z"})


async def get_revision(request: web.Request) -> web.Response:
    return _json({"revision": 5}, headers={"ETag": "rev-5"})


async def get_notes(request: web.Request) -> web.Response:
    resp = web.Response(body=b"Deliver to the back door.", headers={_STRIP: "Content-Type"})
    return resp


async def get_tracking(request: web.Request) -> web.Response:
    return web.Response(body=b'{"carrier": "PostNord", "events": [', content_type=JSON)


async def get_shipping(request: web.Request) -> web.Response:
    return _json(
        {"method": "standard", "eta": "2024-05-03"},
        headers={"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "true"},
    )


async def refund(request: web.Request) -> web.Response:
    await request.read()
    return problem(request, 503, "Service unavailable", "The payment provider is down.",
                   slug="unavailable")  # fmt: skip


async def brew(request: web.Request) -> web.Response:
    return problem(request, 418, "I'm a teapot", "This server brews no coffee.", slug="teapot")


async def get_summary(request: web.Request) -> web.Response:
    return _json({"order": _order_id(request), "total": 200}, status=299)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_ID = "{id:[0-9]+}"
_HANDLERS: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/bench/small", bench_small),
    ("GET", "/bench/large", bench_large),
    ("GET", "/orders", list_orders),
    ("POST", "/orders", create_order),
    ("DELETE", "/orders", delete_collection),
    ("POST", "/orders/exports", start_export),
    ("GET", f"/orders/exports/{_ID}", get_export),
    ("POST", "/orders/imports", start_import),
    ("GET", f"/orders/{_ID}", get_order),
    ("PUT", f"/orders/{_ID}", replace_order),
    ("PATCH", f"/orders/{_ID}", update_order),
    ("DELETE", f"/orders/{_ID}", delete_order),
    ("POST", f"/orders/{_ID}/lines", add_line),
    ("DELETE", f"/orders/{_ID}/lines/{{line:[0-9]+}}", delete_line),
    ("GET", f"/orders/{_ID}/receipt", get_receipt),
    ("POST", f"/orders/{_ID}/payment", pay),
    ("GET", f"/orders/{_ID}/invoice", get_invoice),
    ("GET", f"/orders/{_ID}/attachments", get_attachments),
    ("PUT", f"/orders/{_ID}/lock", lock_order),
    ("PUT", f"/orders/{_ID}/address", change_address),
    ("GET", f"/orders/{_ID}/events", get_events),
    ("GET", f"/orders/{_ID}/history", get_history),
    ("GET", f"/orders/{_ID}/revision", get_revision),
    ("GET", f"/orders/{_ID}/notes", get_notes),
    ("GET", f"/orders/{_ID}/tracking", get_tracking),
    ("GET", f"/orders/{_ID}/shipping", get_shipping),
    ("POST", f"/orders/{_ID}/refund", refund),
    ("GET", f"/orders/{_ID}/brew", brew),
    ("GET", f"/orders/{_ID}/summary", get_summary),
)


def make_sample_app() -> web.Application:
    """The sample orders API as an aiohttp application."""
    app = web.Application()
    app.on_response_prepare.append(_strip_headers)
    for method, path, handler in _HANDLERS:
        app.router.add_route(method, path, handler)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m auditproxy.sample_upstream",
        description="Serve the sample orders API (compliant and non-compliant endpoints).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port: {args.port} is not a TCP port (0-65535)")
    try:
        web.run_app(
            make_sample_app(),
            host=args.host,
            port=args.port,
            access_log=None,
            print=lambda msg: print(msg, file=sys.stderr, flush=True),
        )
    except OSError as exc:
        print(f"sample upstream: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
