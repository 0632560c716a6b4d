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
import re
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

MISSING_FROM = 900  # order ids >= this do not exist (404)
API = "/v1"  # the API root: major version in the URL (DIGG VER.05)

# Private marker: the listed headers are removed after aiohttp has added its
# defaults (Date, Content-Type), just before the head is written.
_STRIP = "X-Sample-Strip"
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")

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
    body: bytes | None = None  # request body (JSON unless `headers` says otherwise)
    headers: tuple[tuple[str, str], ...] = ()  # request headers beyond CLIENT_HEADERS
    weight: int = 0  # share of demo traffic; 0 = never sent by the demo
    varies_id: bool = True  # the demo may substitute another existing order id

    @property
    def compliant(self) -> bool:
        return not self.rules

    def request_headers(self) -> dict[str, str]:
        """What a client sends for this row: CLIENT_HEADERS, a JSON Content-Type
        with a body, then the row's own headers."""
        out = dict(CLIENT_HEADERS)
        if self.body is not None:
            out["Content-Type"] = JSON
        out.update(self.headers)
        return out


# Every client of the table (the demo, the tests) sends these.
CLIENT_HEADERS = {"Accept": JSON}
LONG_QUERY = "filter=" + "state-open." * 200  # makes a URL of over 2048 characters


ENDPOINTS: tuple[Endpoint, ...] = (
    # --- compliant -------------------------------------------------------
    Endpoint(name="list-orders", method="GET", path="/v1/orders", route="/v1/orders", status=200,
             demonstrates="collection as JSON with Date", weight=30, varies_id=False),
    Endpoint(name="get-order", method="GET", path="/v1/orders/42", route="/v1/orders/{id}",
             status=200, demonstrates="single resource with a quoted ETag", weight=40),
    Endpoint(name="get-order-missing", method="GET", path="/v1/orders/987", route="/v1/orders/{id}",
             status=404, demonstrates="404 as problem+json with all five FEL.01 members",
             weight=8, varies_id=False),
    Endpoint(name="create-order", method="POST", path="/v1/orders", route="/v1/orders", status=201,
             demonstrates="201 with Location of the new order",
             body=b'{"item": "widget", "quantity": 2}', weight=12, varies_id=False),
    Endpoint(name="create-order-bad-json", method="POST", path="/v1/orders", route="/v1/orders",
             status=400, demonstrates="400 problem+json for a body that is not JSON",
             body=b'{"item": "widget", ', weight=3, varies_id=False),
    Endpoint(name="create-order-invalid", method="POST", path="/v1/orders", route="/v1/orders",
             status=422, demonstrates="422 problem+json for a failed validation",
             body=b'{"quantity": 0}', weight=3, varies_id=False),
    Endpoint(name="replace-order", method="PUT", path="/v1/orders/42", route="/v1/orders/{id}",
             status=200, demonstrates="PUT answered 200 with the new representation",
             body=b'{"item": "widget", "quantity": 3}', weight=6),
    Endpoint(name="update-order", method="PATCH", path="/v1/orders/42", route="/v1/orders/{id}",
             status=204, demonstrates="PATCH answered 204 without content",
             body=b'{"quantity": 5}', weight=6),
    Endpoint(name="delete-order", method="DELETE", path="/v1/orders/42", route="/v1/orders/{id}",
             status=204, demonstrates="DELETE answered 204", weight=5),
    Endpoint(name="start-export", method="POST", path="/v1/orders/exports",
             route="/v1/orders/exports", status=202,
             demonstrates="202 for an async export, with Location of the job",
             body=b'{"format": "csv"}', weight=3, varies_id=False),
    Endpoint(name="get-export", method="GET", path="/v1/orders/exports/7",
             route="/v1/orders/exports/{id}", status=200,
             demonstrates="the export job's status", weight=3),
    Endpoint(name="bench-small", method="GET", path="/v1/bench/small", route="/v1/bench/small",
             status=200, demonstrates="benchmark: ~200 B JSON", varies_id=False),
    Endpoint(name="bench-large", method="GET", path="/v1/bench/large", route="/v1/bench/large",
             status=200, demonstrates="benchmark: just under 64 KiB of JSON", varies_id=False),
    # --- deliberately non-compliant --------------------------------------
    Endpoint(name="add-line-no-location", method="POST", path="/v1/orders/42/lines",
             route="/v1/orders/{id}/lines", status=201, demonstrates="201 without Location",
             rules=("ARP.03.LOCATION-201",), body=b'{"sku": "A-1", "quantity": 1}', weight=4),
    Endpoint(name="start-import-no-location", method="POST", path="/v1/orders/imports",
             route="/v1/orders/imports", status=202, demonstrates="202 without Location",
             rules=("ARP.04.LOCATION-202",), body=b'{"source": "s3://bucket/orders.csv"}',
             weight=2, varies_id=False),
    Endpoint(name="delete-collection-no-allow", method="DELETE", path="/v1/orders",
             route="/v1/orders", status=405, demonstrates="405 without Allow",
             rules=("RFC9110-405-ALLOW",), weight=2, varies_id=False),
    Endpoint(name="delete-line-200", method="DELETE", path="/v1/orders/42/lines/3",
             route="/v1/orders/{id}/lines/{line}", status=200,
             demonstrates="DELETE answered 200 (ARP.02 lists 202/204)",
             rules=("ARP.02.METHOD-STATUS",), weight=3),
    Endpoint(name="get-receipt-201", method="GET", path="/v1/orders/42/receipt",
             route="/v1/orders/{id}/receipt", status=201, demonstrates="GET answered 201",
             rules=("ARP.02.METHOD-STATUS",), weight=3),
    Endpoint(name="pay-402", method="POST", path="/v1/orders/42/payment",
             route="/v1/orders/{id}/payment", status=402,
             demonstrates="402, marked 'not used by us' in the handling table",
             rules=("RETRY.UNUSED-STATUS",), body=b'{"amount": 100}', weight=2),
    Endpoint(name="invoice-401-no-challenge", method="GET", path="/v1/orders/42/invoice",
             route="/v1/orders/{id}/invoice", status=401,
             demonstrates="401 without WWW-Authenticate",
             rules=("RFC9110-401-WWW-AUTHENTICATE",), weight=3),
    Endpoint(name="attachments-html-error", method="GET", path="/v1/orders/42/attachments",
             route="/v1/orders/{id}/attachments", status=404,
             demonstrates="an error with a text/html body", rules=("FEL.02.MEDIA-TYPE",),
             weight=3),
    Endpoint(name="lock-403-thin-problem", method="PUT", path="/v1/orders/42/lock",
             route="/v1/orders/{id}/lock", status=403,
             demonstrates="problem+json missing type, detail and instance",
             rules=("FEL.01.MEMBERS",), body=b'{"locked": true}', weight=2),
    Endpoint(name="address-problem-status-mismatch", method="PUT", path="/v1/orders/42/address",
             route="/v1/orders/{id}/address", status=422,
             demonstrates="problem+json whose status member says 400",
             rules=("RFC9457-STATUS-MATCH",), body=b'{"zip": "x"}', weight=2),
    Endpoint(name="events-no-date", method="GET", path="/v1/orders/42/events",
             route="/v1/orders/{id}/events", status=200, demonstrates="200 without Date",
             rules=("RFC9110-DATE-PRESENT",), weight=3),
    Endpoint(name="history-rfc3339-date", method="GET", path="/v1/orders/42/history",
             route="/v1/orders/{id}/history", status=200,
             demonstrates="Date in RFC 3339 instead of IMF-fixdate",
             rules=("RFC9110-DATE-FORMAT",), weight=3),
    Endpoint(name="revision-bad-etag", method="GET", path="/v1/orders/42/revision",
             route="/v1/orders/{id}/revision", status=200, demonstrates="unquoted ETag",
             rules=("RFC9110-ETAG-SYNTAX",), weight=3),
    Endpoint(name="notes-no-content-type", method="GET", path="/v1/orders/42/notes",
             route="/v1/orders/{id}/notes", status=200, demonstrates="content without Content-Type",
             rules=("RFC9110-CONTENT-TYPE-PRESENT",), weight=2),
    Endpoint(name="tracking-broken-json", method="GET", path="/v1/orders/42/tracking",
             route="/v1/orders/{id}/tracking", status=200,
             demonstrates="application/json body that does not parse",
             rules=("RFC8259-JSON-PARSE",), weight=3),
    Endpoint(name="shipping-cors-wildcard-credentials", method="GET",
             path="/v1/orders/42/shipping", route="/v1/orders/{id}/shipping", status=200,
             demonstrates="Access-Control-Allow-Origin * with credentials",
             rules=("FETCH-CORS-WILDCARD-CREDENTIALS", "ARP.01.CORS-WILDCARD"), weight=2),
    Endpoint(name="refund-503-no-retry-after", method="POST", path="/v1/orders/42/refund",
             route="/v1/orders/{id}/refund", status=503, demonstrates="503 without Retry-After",
             rules=("RFC9110-503-RETRY-AFTER",), body=b'{"amount": 100}', weight=2),
    Endpoint(name="brew-418", method="GET", path="/v1/orders/42/brew", route="/v1/orders/{id}/brew",
             status=418, demonstrates="418, in neither guideline table",
             rules=("STATUS.UNKNOWN",), weight=2),
    Endpoint(name="summary-299", method="GET", path="/v1/orders/42/summary",
             route="/v1/orders/{id}/summary", status=299, demonstrates="unregistered status 299",
             rules=("STATUS.UNKNOWN",), weight=2),
    # --- the rest of the DIGG profile at run time ------------------------
    Endpoint(name="api-info", method="GET", path="/v1/api-info", route="/v1/api-info",
             status=200, demonstrates="the api-info resource under the API root (VER.06)",
             weight=2, varies_id=False),
    Endpoint(name="customer-camel-case", method="GET", path="/v1/orders/42/customer",
             route="/v1/orders/{id}/customer", status=200,
             demonstrates="camelCase fields in an otherwise snake_case API: the report's "
             "per-API naming tally names the minority (AME.05)", weight=2),
    Endpoint(name="line-items-underscore", method="GET", path="/v1/orders/42/line_items",
             route="/v1/orders/{id}/line_items", status=200,
             demonstrates="underscore in the path", rules=("UFN.09.NO-UNDERSCORE-SPACE",),
             weight=2),
    Endpoint(name="shipping-label-camel-path", method="GET", path="/v1/orders/42/shippingLabel",
             route="/v1/orders/{id}/shippingLabel", status=200,
             demonstrates="upper case and words joined by case in the path",
             rules=("UFN.07.PATH-CHARS", "UFN.08.WORD-SEPARATOR"), weight=2),
    Endpoint(name="search-long-url", method="GET", path=f"/v1/orders?{LONG_QUERY}",
             route="/v1/orders", status=200, demonstrates="a URL over 2048 characters",
             rules=("UFN.05.URL-LENGTH",), weight=1, varies_id=False),
    Endpoint(name="legacy-unversioned", method="GET", path="/legacy/orders/42",
             route="/legacy/orders/{id}", status=200,
             demonstrates="an API without v<N> in its URL and without api-info",
             rules=("VER.05.URL-MAJOR",), weight=2),
    Endpoint(name="documents-basic-challenge", method="GET", path="/v1/orders/42/documents",
             route="/v1/orders/{id}/documents", status=401,
             demonstrates="401 offering Basic authentication", rules=("SAK.09.NO-BASIC-DIGEST",),
             weight=2),
    Endpoint(name="label-token-scheme", method="GET", path="/v1/orders/42/label",
             route="/v1/orders/{id}/label", status=200,
             demonstrates="Authorization with a scheme other than Bearer (accepted)",
             rules=("SAK.10.BEARER",), headers=(("Authorization", "Token demo-token-123"),),
             weight=2),
    Endpoint(name="export-api-key-in-query", method="GET",
             path="/v1/orders/42/export?api_key=demo-secret-key",
             route="/v1/orders/{id}/export", status=200,
             demonstrates="an API key in the query string (redacted in every output)",
             rules=("SAK.15.NO-KEY-IN-URL",), weight=2),
    Endpoint(name="audit-500-stack-trace", method="GET", path="/v1/orders/42/audit",
             route="/v1/orders/{id}/audit", status=500,
             demonstrates="a 500 whose problem detail holds a Python traceback",
             rules=("SAK.25-26.NO-INTERNALS",), weight=2),
    Endpoint(name="status-no-traceparent", method="GET", path="/v1/orders/42/status",
             route="/v1/orders/{id}/status", status=200,
             demonstrates="a response without traceparent", rules=("SPA.04.TRACEPARENT-RESPONSE",),
             weight=2),
    Endpoint(name="timeline-request-id-only", method="GET", path="/v1/orders/42/timeline",
             route="/v1/orders/{id}/timeline", status=200,
             demonstrates="X-Request-Id instead of traceparent",
             rules=("SPA.04.TRACEPARENT-RESPONSE", "SPA.07.NO-ID-ONLY"), weight=2),
    Endpoint(name="trace-new-trace-id", method="GET", path="/v1/orders/42/trace",
             route="/v1/orders/{id}/trace", status=200,
             demonstrates="a traceparent with another trace-id than the request's",
             rules=("SPA.02.TRACE-CONTINUITY",), weight=2),
    Endpoint(name="discounts-mixed-naming", method="GET", path="/v1/orders/42/discounts",
             route="/v1/orders/{id}/discounts", status=200,
             demonstrates="camelCase and snake_case fields in one body",
             rules=("AME.05.NAMING-CONSISTENT",), weight=2),
    Endpoint(name="tags-bad-field-names", method="GET", path="/v1/orders/42/tags",
             route="/v1/orders/{id}/tags", status=200,
             demonstrates="PascalCase and kebab-case field names",
             rules=("AME.04.NAMING-STYLE", "AME.07.FIELD-CHARS"), weight=2),
    Endpoint(name="invoice-xml", method="GET", path="/v1/orders/42/invoice.xml",
             route="/v1/orders/{id}/invoice.xml", status=200,
             demonstrates="XML to a client that asked for JSON",
             rules=("AME.01.JSON-REPRESENTATION", "ARQ.04.ACCEPT"), weight=2),
    Endpoint(name="delivery-bad-dates", method="GET", path="/v1/orders/42/delivery",
             route="/v1/orders/{id}/delivery", status=200,
             demonstrates="dates as d/m/y, with a +02:00 offset and without a zone",
             rules=("DOT.02.RFC3339", "DOT.01.UTC", "DOT.03.TIMEZONE"), weight=2),
    Endpoint(name="archive-bad-deprecation", method="GET", path="/v1/orders/42/archive",
             route="/v1/orders/{id}/archive", status=200,
             demonstrates="Deprecation: true and an RFC 3339 Sunset",
             rules=("RFC9745-DEPRECATION-SYNTAX", "RFC8594-SUNSET-SYNTAX"), weight=2),
    Endpoint(name="v2-api-info-missing", method="GET", path="/v2/api-info", route="/v2/api-info",
             status=404, demonstrates="an API root whose api-info answers 404",
             rules=("VER.06.API-INFO",), weight=1, varies_id=False),
    Endpoint(name="comment-text-plain-accepted", method="POST", path="/v1/orders/42/comments",
             route="/v1/orders/{id}/comments", status=201,
             demonstrates="a text/plain request body accepted instead of 415",
             rules=("SAK.29.CONTENT-TYPE-415",), body=b"Leave it at the door.",
             headers=(("Content-Type", "text/plain"),), weight=2),
    Endpoint(name="memo-latin1-accepted", method="PUT", path="/v1/orders/42/memo",
             route="/v1/orders/{id}/memo", status=200,
             demonstrates="a JSON body in ISO-8859-1 accepted",
             rules=("ARQ.01.UTF8",), body='{"memo": "M\u00e4rta"}'.encode("latin-1"),
             headers=(("Content-Type", "application/json; charset=iso-8859-1"),), weight=2),
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
        "links": {"self": f"{API}/orders/{order_id}"},
    }


def _order_id(request: web.Request) -> int:
    return int(request.match_info["id"])


def _traceparent(request: web.Request | None = None) -> str:
    """A traceparent for an answer: the request's trace-id with this server's own
    span id (the trace continues), or a new trace when there is none to continue."""
    m = _TRACEPARENT.fullmatch(request.headers.get("traceparent", "")) if request else None
    trace = m.group(1) if m else secrets.token_hex(16)
    return f"00-{trace}-{secrets.token_hex(8)}-01"


async def _strip_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: answer with trace context (DIGG SPA.04) unless the
    handler set its own, then remove the headers a handler asked to strip."""
    if "traceparent" not in response.headers:
        response.headers["traceparent"] = _traceparent(request)
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
    return _json(
        _order(1001, data["quantity"]), status=201, headers={"Location": f"{API}/orders/1001"}
    )


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
    location = {"Location": f"{API}/orders/exports/7"}
    return _json({"id": 7, "state": "queued"}, status=202, headers=location)


async def get_export(request: web.Request) -> web.Response:
    return _json({"id": _order_id(request), "state": "running", "progress": 0.4})


# Precomputed benchmark bodies: ~200 B and just under 64 KiB of JSON.
_BENCH_SMALL = json.dumps(
    {"id": 42, "item": "widget", "quantity": 2, "state": "open",
     "created": "2024-05-01T08:30:00Z", "customer": {"id": 7, "name": "Ada Lovelace"},
     "links": {"self": f"{API}/orders/42", "lines": f"{API}/orders/42/lines"}, "note": "x" * 16},
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
                 headers={"Location": f"{API}/orders/{oid}/receipt"})  # fmt: skip


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


# --- the rest of the DIGG profile: URLs, security, tracing, payloads, dates, versions ---


async def api_info(request: web.Request) -> web.Response:
    return _json({"api_name": "orders", "api_version": "1.2.0", "release_status": "active",
                  "documentation_url": "https://api.example.com/docs/orders"})  # fmt: skip


async def get_customer(request: web.Request) -> web.Response:
    # Every other body of this API is snake_case; this one is camelCase throughout.
    return _json({"customerId": 7, "fullName": "Ada Lovelace", "emailAddress": "ada@example.com"})


async def get_line_items(request: web.Request) -> web.Response:
    return _json({"items": [{"sku": "A-1", "quantity": 1, "unit_price": 100}]})


async def get_shipping_label(request: web.Request) -> web.Response:
    return _json({"carrier": "PostNord", "tracking_number": "PN123"})


async def get_legacy_order(request: web.Request) -> web.Response:
    return _json(_order(_order_id(request)))


async def get_documents(request: web.Request) -> web.Response:
    resp = problem(request, 401, "Unauthorized", "Log in to see documents.", slug="unauthorized")
    resp.headers["WWW-Authenticate"] = 'Basic realm="orders"'
    return resp


async def get_label(request: web.Request) -> web.Response:
    return _json({"label_url": f"{API}/orders/{_order_id(request)}/label.pdf"})


async def get_order_export(request: web.Request) -> web.Response:
    return _json({"format": "csv", "state": "ready"})


async def get_audit(request: web.Request) -> web.Response:
    trace = ('Traceback (most recent call last):\n  File "/srv/orders/audit.py", line 12, '
             "in load\nKeyError: 'ledger'")  # fmt: skip
    return problem(request, 500, "Internal Server Error", trace, slug="internal")


async def get_status(request: web.Request) -> web.Response:
    return _json({"state": "open"}, headers={_STRIP: "traceparent"})


async def get_timeline(request: web.Request) -> web.Response:
    return _json({"events": []}, headers={_STRIP: "traceparent", "X-Request-Id": "req-7f3a"})


async def get_trace(request: web.Request) -> web.Response:
    return _json({"state": "open"}, headers={"traceparent": _traceparent()})  # a new trace


async def get_discounts(request: web.Request) -> web.Response:
    return _json({"discount_code": "SPRING", "validUntil": "2024-06-01"})


async def get_tags(request: web.Request) -> web.Response:
    return _json({"TagList": ["gift"], "gift-wrap": True})


async def get_invoice_xml(request: web.Request) -> web.Response:
    return web.Response(
        text="<invoice><total>200</total></invoice>", content_type="application/xml"
    )


async def get_delivery(request: web.Request) -> web.Response:
    return _json({"promised": "03/05/2024", "dispatched_at": "2024-05-02T10:00:00+02:00",
                  "window_start": "2024-05-03T08:00:00"})  # fmt: skip


async def get_archive(request: web.Request) -> web.Response:
    return _json({"archived": True}, headers={"Deprecation": "true", "Sunset": "2025-12-31"})


async def v2_api_info(request: web.Request) -> web.Response:
    return problem(request, 404, "Not Found", "There is no API version 2.", slug="not-found")


async def add_comment(request: web.Request) -> web.Response:
    await request.read()  # any Content-Type is taken
    location = f"{API}/orders/{_order_id(request)}/comments/5"
    return _json({"comment_id": 5}, status=201, headers={"Location": location})


async def put_memo(request: web.Request) -> web.Response:
    await request.read()  # any charset is taken
    return _json({"memo": "saved"})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_ID = "{id:[0-9]+}"
_HANDLERS: tuple[tuple[str, str, Handler], ...] = (
    ("GET", f"{API}/bench/small", bench_small),
    ("GET", f"{API}/bench/large", bench_large),
    ("GET", f"{API}/orders", list_orders),
    ("POST", f"{API}/orders", create_order),
    ("DELETE", f"{API}/orders", delete_collection),
    ("POST", f"{API}/orders/exports", start_export),
    ("GET", f"{API}/orders/exports/{_ID}", get_export),
    ("POST", f"{API}/orders/imports", start_import),
    ("GET", f"{API}/orders/{_ID}", get_order),
    ("PUT", f"{API}/orders/{_ID}", replace_order),
    ("PATCH", f"{API}/orders/{_ID}", update_order),
    ("DELETE", f"{API}/orders/{_ID}", delete_order),
    ("POST", f"{API}/orders/{_ID}/lines", add_line),
    ("DELETE", f"{API}/orders/{_ID}/lines/{{line:[0-9]+}}", delete_line),
    ("GET", f"{API}/orders/{_ID}/receipt", get_receipt),
    ("POST", f"{API}/orders/{_ID}/payment", pay),
    ("GET", f"{API}/orders/{_ID}/invoice", get_invoice),
    ("GET", f"{API}/orders/{_ID}/attachments", get_attachments),
    ("PUT", f"{API}/orders/{_ID}/lock", lock_order),
    ("PUT", f"{API}/orders/{_ID}/address", change_address),
    ("GET", f"{API}/orders/{_ID}/events", get_events),
    ("GET", f"{API}/orders/{_ID}/history", get_history),
    ("GET", f"{API}/orders/{_ID}/revision", get_revision),
    ("GET", f"{API}/orders/{_ID}/notes", get_notes),
    ("GET", f"{API}/orders/{_ID}/tracking", get_tracking),
    ("GET", f"{API}/orders/{_ID}/shipping", get_shipping),
    ("POST", f"{API}/orders/{_ID}/refund", refund),
    ("GET", f"{API}/orders/{_ID}/brew", brew),
    ("GET", f"{API}/orders/{_ID}/summary", get_summary),
    ("GET", f"{API}/api-info", api_info),
    ("GET", f"{API}/orders/{_ID}/customer", get_customer),
    ("GET", f"{API}/orders/{_ID}/line_items", get_line_items),
    ("GET", f"{API}/orders/{_ID}/shippingLabel", get_shipping_label),
    ("GET", f"/legacy/orders/{_ID}", get_legacy_order),
    ("GET", f"{API}/orders/{_ID}/documents", get_documents),
    ("GET", f"{API}/orders/{_ID}/label", get_label),
    ("GET", f"{API}/orders/{_ID}/export", get_order_export),
    ("GET", f"{API}/orders/{_ID}/audit", get_audit),
    ("GET", f"{API}/orders/{_ID}/status", get_status),
    ("GET", f"{API}/orders/{_ID}/timeline", get_timeline),
    ("GET", f"{API}/orders/{_ID}/trace", get_trace),
    ("GET", f"{API}/orders/{_ID}/discounts", get_discounts),
    ("GET", f"{API}/orders/{_ID}/tags", get_tags),
    ("GET", f"{API}/orders/{_ID}/invoice.xml", get_invoice_xml),
    ("GET", f"{API}/orders/{_ID}/delivery", get_delivery),
    ("GET", f"{API}/orders/{_ID}/archive", get_archive),
    ("GET", "/v2/api-info", v2_api_info),
    ("POST", f"{API}/orders/{_ID}/comments", add_comment),
    ("PUT", f"{API}/orders/{_ID}/memo", put_memo),
)


# The API's first, unversioned paths stay answered while they are deprecated
# (RFC 9745 Deprecation, RFC 8594 Sunset, a successor-version link), as an API
# that moved under /v1 keeps them for the clients it had.
DEPRECATED_SINCE = "@1704067200"  # 2024-01-01
SUNSET = "Thu, 31 Dec 2026 23:59:59 GMT"
_UNVERSIONED = (("GET", f"/orders/{_ID}", get_order), ("GET", "/orders", list_orders))


def _deprecated(handler: Handler) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        resp = await handler(request)
        resp.headers["Deprecation"] = DEPRECATED_SINCE
        resp.headers["Sunset"] = SUNSET
        resp.headers["Link"] = f'<{API}{request.path}>; rel="successor-version"'
        return resp

    return answer


def make_sample_app() -> web.Application:
    """The sample orders API as an aiohttp application."""
    app = web.Application()
    app.on_response_prepare.append(_strip_headers)
    for method, path, handler in _HANDLERS:
        app.router.add_route(method, path, handler)
    for method, path, handler in _UNVERSIONED:
        app.router.add_route(method, path, _deprecated(handler))
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
