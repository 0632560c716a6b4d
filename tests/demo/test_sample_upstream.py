"""The sample upstream answers every row of its endpoint table as the table says.

The checks below are a small, independent re-statement of the rules the table
names (not the rule engine), so a row that stops demonstrating its violation,
or a compliant row that picks one up, fails here even if the engine is wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDictProxy

from auditproxy.core.engine import audit
from auditproxy.core.model import Body, Exchange, RequestHead, ResponseHead
from auditproxy.profiles import load_profile
from auditproxy.sample_upstream import ENDPOINTS, MISSING_FROM, Endpoint, make_sample_app

ALL = frozenset({"POST", "GET", "PUT", "DELETE", "PATCH"})
# ARP.02 status x method matrix (rule-catalog.md §1).
MATRIX: dict[int, frozenset[str]] = {
    200: frozenset({"GET", "PUT"}),
    201: frozenset({"POST"}),
    202: frozenset({"POST", "PUT", "DELETE", "PATCH"}),
    204: frozenset({"PUT", "DELETE", "PATCH"}),
    415: ALL - {"DELETE"},
    422: frozenset({"POST", "PUT", "PATCH"}),
    501: ALL - {"GET"},
    **dict.fromkeys((400, 401, 403, 404, 405, 408, 500, 502, 503, 504), ALL),
}
IMF_FIXDATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d{2}:\d{2}:\d{2} GMT$"
)
ENTITY_TAG = re.compile(r'^(W/)?"[\x21\x23-\x7e\x80-\xff]*"$')
PROBLEM_MEMBERS = ("type", "title", "status", "detail", "instance")
REGISTERED = {s.value for s in HTTPStatus} - {418}  # IANA lists 418 as unused


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass(frozen=True)
class Seen:
    method: str
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()
    target: str = "/"
    sent: tuple[tuple[str, str], ...] = ()  # request headers
    sent_body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def sent_header(self, name: str) -> str:
        return next((v for k, v in self.sent if k.lower() == name.lower()), "")

    def json(self) -> object:
        if not (self.media_type == "application/json" or self.media_type.endswith("+json")):
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def media_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def problem(self) -> dict[str, object] | None:
        if self.media_type != "application/problem+json":
            return None
        doc = json.loads(self.body)
        return doc if isinstance(doc, dict) else None


def _json_fails(seen: Seen) -> bool:
    if not (seen.media_type == "application/json" or seen.media_type.endswith("+json")):
        return False
    try:
        json.loads(seen.body)
    except ValueError:
        return True
    return False


def _members_missing(seen: Seen) -> bool:
    doc = seen.problem()
    return doc is not None and any(m not in doc for m in PROBLEM_MEMBERS)


def _status_mismatch(seen: Seen) -> bool:
    doc = seen.problem()
    return doc is not None and "status" in doc and doc["status"] != seen.status


def _keys(doc: object) -> list[str]:
    if isinstance(doc, dict):
        return [*doc, *(k for v in doc.values() for k in _keys(v))]
    if isinstance(doc, list):
        return [k for v in doc for k in _keys(v)]
    return []


def _strings(doc: object) -> list[str]:
    if isinstance(doc, dict):
        return [s for v in doc.values() for s in _strings(v)]
    if isinstance(doc, list):
        return [s for v in doc for s in _strings(v)]
    return [doc] if isinstance(doc, str) else []


def _literal_segments(seen: Seen) -> list[str]:
    # the demo's paths have ids only as digit-only segments
    return [seg for seg in seen.path.split("/") if seg and not seg.isdigit()]


CAMEL = re.compile(r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+")
SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})?")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
LOOKS_LIKE_DATE = re.compile(r"\d{1,2}[-/.]\d{1,2}[-/.]\d{4}|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}")


def _dates(seen: Seen) -> list[tuple[str, str | None]]:
    """(value, offset) of every date-time string; offset 'bad' when not RFC 3339."""
    out: list[tuple[str, str | None]] = []
    for value in _strings(seen.json()):
        if ISO_DATE.fullmatch(value):
            continue
        m = ISO_DATE_TIME.fullmatch(value)
        if m:
            out.append((value, m.group(1)))
        elif LOOKS_LIKE_DATE.match(value):
            out.append((value, "bad"))
    return out


def _trace_id(value: str) -> str:
    parts = value.split("-")
    return parts[1] if len(parts) == 4 else ""


# rule id -> "this response breaks the rule"
VIOLATES: dict[str, Callable[[Seen], bool]] = {
    "ARP.02.METHOD-STATUS": lambda s: s.status in MATRIX and s.method not in MATRIX[s.status],
    "ARP.03.LOCATION-201": lambda s: s.status == 201 and "Location" not in s.headers,
    "ARP.04.LOCATION-202": lambda s: s.status == 202 and "Location" not in s.headers,
    "RETRY.UNUSED-STATUS": lambda s: s.status in (300, 305, 306, 402),
    "STATUS.UNKNOWN": lambda s: s.status not in REGISTERED,
    "RFC9110-405-ALLOW": lambda s: s.status == 405 and "Allow" not in s.headers,
    "RFC9110-401-WWW-AUTHENTICATE": lambda s: (
        s.status == 401 and "WWW-Authenticate" not in s.headers
    ),
    "RFC9110-503-RETRY-AFTER": lambda s: s.status == 503 and "Retry-After" not in s.headers,
    "RFC9110-DATE-PRESENT": lambda s: "Date" not in s.headers,
    "RFC9110-DATE-FORMAT": lambda s: (
        "Date" in s.headers and not IMF_FIXDATE.match(s.headers["Date"])
    ),
    "RFC9110-ETAG-SYNTAX": lambda s: (
        "ETag" in s.headers and not ENTITY_TAG.match(s.headers["ETag"])
    ),
    "RFC9110-CONTENT-TYPE-PRESENT": lambda s: bool(s.body) and "Content-Type" not in s.headers,
    "RFC9110-204-NO-CONTENT": lambda s: s.status == 204 and bool(s.body),
    "RFC8259-JSON-PARSE": _json_fails,
    "FEL.02.MEDIA-TYPE": lambda s: (
        s.status >= 400
        and bool(s.body)
        and s.media_type not in ("application/problem+json", "application/problem+xml")
    ),
    "FEL.01.MEMBERS": _members_missing,
    "RFC9457-STATUS-MATCH": _status_mismatch,
    "ARP.01.CORS-WILDCARD": lambda s: s.headers.get("Access-Control-Allow-Origin") == "*",
    "FETCH-CORS-WILDCARD-CREDENTIALS": lambda s: (
        s.headers.get("Access-Control-Allow-Origin") == "*"
        and s.headers.get("Access-Control-Allow-Credentials", "").lower() == "true"
    ),
    # the rest of the DIGG profile (issue 13)
    "UFN.05.URL-LENGTH": lambda s: len(s.target) > 2048,
    "UFN.07.PATH-CHARS": lambda s: any(
        re.search(r"[^a-z0-9\-.~_ ]", seg) for seg in _literal_segments(s)
    ),
    "UFN.08.WORD-SEPARATOR": lambda s: any(
        re.search(r"[a-z][A-Z]", seg) for seg in _literal_segments(s)
    ),
    "UFN.09.NO-UNDERSCORE-SPACE": lambda s: "_" in s.path or " " in s.path,
    "VER.05.URL-MAJOR": lambda s: not re.search(r"/v\d+(/|$)", s.path),
    "VER.06.API-INFO": lambda s: (
        s.path.endswith("/api-info")
        and not (200 <= s.status < 300 and s.media_type == "application/json")
    ),
    "SAK.09.NO-BASIC-DIGEST": lambda s: (
        s.headers.get("WWW-Authenticate", "").startswith(("Basic", "Digest"))
        or s.sent_header("Authorization").startswith(("Basic", "Digest"))
    ),
    "SAK.10.BEARER": lambda s: (
        bool(s.sent_header("Authorization"))
        and not s.sent_header("Authorization").startswith("Bearer ")
    ),
    "SAK.15.NO-KEY-IN-URL": lambda s: "api_key=" in s.target,
    "SAK.25-26.NO-INTERNALS": lambda s: s.status >= 400 and b"Traceback" in s.body,
    "SPA.04.TRACEPARENT-RESPONSE": lambda s: "traceparent" not in s.headers,
    "SPA.07.NO-ID-ONLY": lambda s: "X-Request-Id" in s.headers and "traceparent" not in s.headers,
    "SPA.02.TRACE-CONTINUITY": lambda s: (
        "traceparent" in s.headers
        and _trace_id(s.headers["traceparent"]) != _trace_id(s.sent_header("traceparent"))
    ),
    "AME.01.JSON-REPRESENTATION": lambda s: (
        200 <= s.status < 300
        and bool(s.body)
        and bool(s.media_type)
        and not (s.media_type == "application/json" or s.media_type.endswith("+json"))
    ),
    "AME.04.NAMING-STYLE": lambda s: any(k[:1].isupper() for k in _keys(s.json())),
    "AME.07.FIELD-CHARS": lambda s: any(re.search(r"[^A-Za-z0-9_]", k) for k in _keys(s.json())),
    "AME.05.NAMING-CONSISTENT": lambda s: (
        any(CAMEL.fullmatch(k) for k in _keys(s.json()))
        and any(SNAKE.fullmatch(k) for k in _keys(s.json()))
    ),
    "DOT.02.RFC3339": lambda s: any(off == "bad" for _, off in _dates(s)),
    "DOT.01.UTC": lambda s: any(off not in (None, "bad", "Z", "+00:00") for _, off in _dates(s)),
    "DOT.03.TIMEZONE": lambda s: any(off is None for _, off in _dates(s)),
    "RFC9745-DEPRECATION-SYNTAX": lambda s: (
        "Deprecation" in s.headers and not re.fullmatch(r"@\d+", s.headers["Deprecation"])
    ),
    "RFC8594-SUNSET-SYNTAX": lambda s: (
        "Sunset" in s.headers and not IMF_FIXDATE.match(s.headers["Sunset"])
    ),
    "ARQ.04.ACCEPT": lambda s: (
        200 <= s.status < 300
        and s.sent_header("Accept") == "application/json"
        and bool(s.media_type)
        and s.media_type not in ("application/json", "application/problem+json")
    ),
    "SAK.29.CONTENT-TYPE-415": lambda s: (
        200 <= s.status < 300
        and bool(s.sent_body)
        and s.sent_header("Content-Type").split(";")[0] not in ("application/json",)
    ),
    "ARQ.01.UTF8": lambda s: 200 <= s.status < 300 and bool(s.sent_body) and _not_utf8(s.sent_body),
}


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@pytest.fixture
async def client() -> TestClient[web.Request, web.Application]:
    async with TestClient(TestServer(make_sample_app(), host="127.0.0.1")) as c:
        yield c  # type: ignore[misc]


async def _call(client: TestClient[web.Request, web.Application], row: Endpoint,
                path: str | None = None) -> Seen:  # fmt: skip
    headers = {**row.request_headers(), "traceparent": TRACEPARENT}
    target = path or row.path
    async with client.request(row.method, target, data=row.body,
                              headers=headers) as resp:  # fmt: skip
        return Seen(row.method, resp.status, resp.headers, await resp.read(), resp.raw_headers,
                    target, tuple(headers.items()), row.body or b"")  # fmt: skip


def test_every_expected_rule_has_an_independent_check() -> None:
    """Each rule id the table promises is one this test can verify on the wire."""
    promised = {r for e in ENDPOINTS for r in e.rules}
    assert promised <= set(VIOLATES), promised - set(VIOLATES)
    assert len({e.name for e in ENDPOINTS}) == len(ENDPOINTS)


@pytest.mark.parametrize("row", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
async def test_row_answers_as_the_table_says(
    client: TestClient[web.Request, web.Application], row: Endpoint
) -> None:
    """The row's request gets its status and breaks exactly the rules it lists."""
    seen = await _call(client, row)
    assert seen.status == row.status, seen.body[:200]
    broken = {rule for rule, check in VIOLATES.items() if check(seen)}
    assert broken == set(row.rules)


@pytest.mark.parametrize(
    "row", [e for e in ENDPOINTS if e.varies_id], ids=[e.name for e in ENDPOINTS if e.varies_id]
)
async def test_other_existing_ids_answer_the_same(
    client: TestClient[web.Request, web.Application], row: Endpoint
) -> None:
    """Rows the demo varies answer alike for any existing id, so demo traffic matches the table."""
    for new_id in ("1", "7", str(MISSING_FROM - 1)):
        path = re.sub(r"/\d+", f"/{new_id}", row.path, count=1)
        assert path != row.path or new_id in row.path
        seen = await _call(client, row, path)
        assert seen.status == row.status, path


def test_paths_match_their_route_templates() -> None:
    """Every row's concrete path is an instance of its declared route template."""
    for row in ENDPOINTS:
        pattern = "^" + re.sub(r"\\\{[a-z]+\\\}", "[^/]+", re.escape(row.route)) + "$"
        assert re.match(pattern, row.path.split("?", 1)[0]), (row.name, row.route)


async def test_bench_bodies_have_the_advertised_sizes(
    client: TestClient[web.Request, web.Application],
) -> None:
    """/bench/small is about 200 B and /bench/large just under 64 KiB of valid JSON."""
    for path, lo, hi in (("/v1/bench/small", 150, 400), ("/v1/bench/large", 63 * 1024, 64 * 1024)):
        async with client.get(path) as resp:
            body = await resp.read()
        assert resp.status == 200
        assert lo <= len(body) <= hi, (path, len(body))
        json.loads(body)


@pytest.mark.parametrize("row", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
async def test_rule_engine_agrees_with_the_table(
    client: TestClient[web.Request, web.Application], row: Endpoint
) -> None:
    """The built-in profile reports every rule the row lists and no other must/should rule."""
    seen = await _call(client, row)
    request_headers = seen.sent
    exchange = Exchange(
        request=RequestHead(method=row.method, target=row.path, headers=request_headers),
        response=ResponseHead(
            status=seen.status,
            headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in seen.raw_headers),
        ),
        request_body=Body(size=len(row.body or b""), sample=row.body or b""),
        response_body=Body(size=len(seen.body), sample=seen.body),
        route=row.route,
    )
    findings = audit(exchange, load_profile("digg"))
    reported = {f.rule for f in findings}
    counting = {f.rule for f in findings if f.counts}
    assert set(row.rules) <= reported, findings
    assert counting <= set(row.rules), findings


@pytest.mark.parametrize("path", ["/orders/1", "/orders"])
async def test_unversioned_paths_answer_as_deprecated_aliases(
    client: TestClient[web.Request, web.Application], path: str
) -> None:
    """The API's first, unversioned paths still answer, marked deprecated with a sunset
    and a link to their /v1 successor; the headers are well-formed (no finding of the
    Deprecation and Sunset syntax rules), and only the URL's missing version is reported."""
    async with client.get(path, headers={"traceparent": TRACEPARENT}) as resp:
        body = await resp.read()
        status, raw = resp.status, resp.raw_headers
    assert status == 200
    headers = {k.decode().lower(): v.decode() for k, v in raw}
    assert headers["deprecation"].startswith("@")
    assert headers["link"] == f'</v1{path}>; rel="successor-version"'
    exchange = Exchange(
        request=RequestHead(method="GET", target=path, headers=(("traceparent", TRACEPARENT),)),
        response=ResponseHead(status=status, headers=tuple(
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in raw)),
        response_body=Body(size=len(body), sample=body),
        route=path.replace("/1", "/{id}"),
    )  # fmt: skip
    counting = {f.rule for f in audit(exchange, load_profile("digg")) if f.counts}
    assert counting == {"VER.05.URL-MAJOR"}
