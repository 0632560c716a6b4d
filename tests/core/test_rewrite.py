"""Rewrite rules (SPEC §11): compiling the config against the profile, applying them
to a response head, framing after a rewrite, and the X-Audit-Findings annotation."""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from auditproxy.core.annotate import ANNOTATION_MAX, annotate_wanted, annotation
from auditproxy.core.errors import ConfigError
from auditproxy.core.findings import Finding, Severity
from auditproxy.core.httpsyntax import reason_phrase
from auditproxy.core.model import RequestHead, ResponseHead
from auditproxy.core.profile import Profile
from auditproxy.core.rewrite import RewriteRule, apply_rewrites, compile_rewrites
from auditproxy.core.rewrite_actions import MAX_HEADER_VALUE
from auditproxy.core.routes import auto_template
from auditproxy.profiles import load_profile
from auditproxy.settings import load_settings

# SPEC §11's example, as written there.
SPEC_EXAMPLE = """\
rewrite:
  - name: location-for-created
    match: {routes: [/orders], methods: [POST], status: [201], finding: ARP.03.LOCATION-201}
    location_from_body: {field: id, template: "/orders/{id}"}   # a top-level JSON field of the body
  - name: allow-on-405
    match: {status: [405]}
    add_header_if_missing: {Allow: "GET, POST"}
  - name: no-powered-by
    remove_header: [X-Powered-By, Server]
  - name: no-store
    match: {routes: [/orders]}
    set_header: {Cache-Control: no-store}
  - name: cors-allowlist
    cors_origin: {allow: ["https://app.example"]}   # a wildcard ACAO becomes the request's Origin when listed
  - name: empty-delete
    match: {methods: [DELETE], status: [200]}
    map_status: {to: 204, when_empty: true}          # only when the body is empty
    dry_run: true                                     # evaluated and counted, not applied
"""  # noqa: E501


def _load(tmp_path: Path, text: str) -> tuple[RewriteRule, ...]:
    """The rules of a config file, compiled the way the proxy does at start-up."""
    f = tmp_path / "auditproxy.yaml"
    f.write_text("upstream: http://127.0.0.1:8000\n" + text, encoding="utf-8")
    s = load_settings(str(f), env={})
    profile = load_profile(s.profile, s.rules, source=str(f))
    return compile_rewrites(s.rewrite, profile, source=str(f))


def _rules(digg: Profile, *mappings: Mapping[str, Any]) -> tuple[RewriteRule, ...]:
    return compile_rewrites(list(mappings), digg, source="test.yaml")


def _finding(rule: str) -> Finding:
    return Finding(rule=rule, severity=Severity.MUST, message="m")


def _names(head: ResponseHead) -> list[str]:
    return [k.lower() for k, _ in head.headers]


# ---------------------------------------------------------------- the SPEC example


def test_spec_example_loads_as_written(tmp_path: Path) -> None:
    """SPEC §11's YAML is accepted as written, each rule with its match and action."""
    rules = _load(tmp_path, SPEC_EXAMPLE)
    assert [(r.name, r.action.action, r.dry_run) for r in rules] == [
        ("location-for-created", "location_from_body", False),
        ("allow-on-405", "add_header_if_missing", False),
        ("no-powered-by", "remove_header", False),
        ("no-store", "set_header", False),
        ("cors-allowlist", "cors_origin", False),
        ("empty-delete", "map_status", True),
    ]
    assert rules[0].describe()["match"] == {
        "routes": ["/orders"], "methods": ["POST"], "status": [201],
        "finding": ["ARP.03.LOCATION-201"],
    }  # fmt: skip
    assert rules[0].needs_body
    assert rules[5].needs_body
    assert not any(r.needs_body for r in rules[1:5])


def test_spec_example_on_a_201_without_location(tmp_path: Path) -> None:
    """A POST /orders answered 201 without Location (and the finding for it) leaves
    with a Location from the body, the header rules applied and the dry run untouched."""
    rules = _load(tmp_path, SPEC_EXAMPLE)
    head = ResponseHead(
        status=201, reason="Created",
        headers=(("Content-Type", "application/json"), ("Content-Length", "12"),
                 ("Server", "gunicorn"), ("X-Powered-By", "PHP"),
                 ("Access-Control-Allow-Origin", "*")),
    )  # fmt: skip
    request = RequestHead(
        method="POST", target="/orders", headers=(("Origin", "https://app.example"),)
    )
    findings = (_finding("ARP.03.LOCATION-201"),)
    result = apply_rewrites(rules, head, request, "/orders", findings, b'{"id": "o-17"}')
    assert result.applied == (
        ("location-for-created", "location_from_body"),
        ("no-powered-by", "remove_header"),
        ("no-store", "set_header"),
        ("cors-allowlist", "cors_origin"),
    )
    out = result.head
    assert (out.status, out.reason) == (201, "Created")
    assert out.header("Location") == "/orders/o-17"
    assert out.header("Server") is None
    assert out.header("X-Powered-By") is None
    assert out.header("Cache-Control") == "no-store"
    assert out.header("Access-Control-Allow-Origin") == "https://app.example"
    assert out.header("Vary") == "Origin"
    assert out.header("Content-Length") == "12"
    assert not result.drop_body


# ---------------------------------------------------------------- every action, table-driven


@dataclass(frozen=True)
class Case:
    """One action on a response it changes, and what the head looks like after it."""

    action: str
    config: Mapping[str, Any]
    status: int
    headers: tuple[tuple[str, str], ...]
    method: str
    body: bytes
    expect_status: int
    expect_headers: tuple[tuple[str, str], ...]
    request_headers: tuple[tuple[str, str], ...] = ()
    target: str = "/orders/42"
    drop_body: bool = False


CASES = [
    Case("set_header", {"set_header": {"Cache-Control": "no-store"}}, 200,
         (("Cache-Control", "max-age=60"), ("Content-Length", "2")), "GET", b"{}",
         200, (("Cache-Control", "no-store"), ("Content-Length", "2"))),
    Case("add_header_if_missing", {"add_header_if_missing": {"Allow": "GET, POST"}}, 405,
         (("Content-Length", "0"),), "PATCH", b"",
         405, (("Content-Length", "0"), ("Allow", "GET, POST"))),
    Case("remove_header", {"remove_header": ["X-Powered-By", "Server"]}, 200,
         (("server", "nginx"), ("Content-Length", "2"), ("X-Powered-By", "PHP")), "GET", b"{}",
         200, (("Content-Length", "2"),)),
    Case("map_status", {"map_status": {"to": 204, "when_empty": True}}, 200,
         (("Content-Length", "0"), ("ETag", '"1"')), "DELETE", b"",
         204, (("ETag", '"1"'),), drop_body=True),
    Case("cors_origin", {"cors_origin": {"allow": ["https://app.example"]}}, 200,
         (("Access-Control-Allow-Origin", "*"), ("Vary", "Accept-Encoding")), "GET", b"{}",
         200, (("Access-Control-Allow-Origin", "https://app.example"),
               ("Vary", "Accept-Encoding, Origin")),
         request_headers=(("Origin", "https://APP.example"),)),
    Case("location_from_body",
         {"location_from_body": {"field": "id", "template": "/orders/{id}/"}}, 201,
         (("Content-Type", "application/json"),), "POST", b'{"id": "a b/1"}',
         201, (("Content-Type", "application/json"), ("Location", "/orders/a%20b%2F1/")),
         target="/orders"),
]  # fmt: skip
BODY_ACTIONS = {"map_status", "location_from_body"}  # as configured in CASES
FINDING = "ARP.03.LOCATION-201"


def _match_for(case: Case, kind: str, hit: bool) -> dict[str, Any] | None:
    """A ``match`` of one kind that holds (or, ``hit=False``, fails) for the case."""
    first = "/" + case.target.split("/")[1]
    template = "/" + "/".join(f"{{p{i}}}" for i in range(case.target.count("/")))
    table: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "prefix": ({"routes": [first]}, {"routes": ["/customers", first + "x"]}),
        "template": ({"routes": [template]}, {"routes": ["/customers/{id}", template + "/x"]}),
        "methods": ({"methods": [case.method.lower()]}, {"methods": ["OPTIONS"]}),
        "status": ({"status": [case.status, 599]}, {"status": 599}),
        "finding": ({"finding": [FINDING]}, {"finding": "RFC9110-405-ALLOW"}),
        "all": (
            {"routes": [first], "methods": [case.method], "status": [case.status],
             "finding": FINDING},
            {"routes": [first], "methods": [case.method], "status": [case.status],
             "finding": "RFC9110-405-ALLOW"},
        ),
    }  # fmt: skip
    if kind == "none":
        return None
    return table[kind][0 if hit else 1]


MATCH_KINDS = ["none", "prefix", "template", "methods", "status", "finding", "all"]
GRID = [
    (case, kind, hit, dry_run, held)
    for case, kind, hit, dry_run, held in itertools.product(
        CASES, MATCH_KINDS, (True, False), (False, True), (True, False)
    )
    if kind != "none" or hit
]


@pytest.mark.parametrize(
    ("case", "kind", "hit", "dry_run", "held"),
    GRID,
    ids=[
        f"{c.action}-{k}-{'hit' if h else 'miss'}{'-dry' if d else ''}-{'held' if b else 'stream'}"
        for c, k, h, d, b in GRID
    ],
)
def test_action_by_match_dry_run_and_body(
    digg: Profile, case: Case, kind: str, hit: bool, dry_run: bool, held: bool
) -> None:
    """Every action under every match kind, dry run or not, body held or not: applied
    under its name, ``dry_run`` (head untouched), ``skipped`` (a body rule without the
    body, head untouched), or not listed at all when the match fails."""
    rule: dict[str, Any] = {"name": "r", **case.config}
    match = _match_for(case, kind, hit)
    if match is not None:
        rule["match"] = match
    if dry_run:
        rule["dry_run"] = True
    rules = _rules(digg, rule)
    head = ResponseHead(status=case.status, reason="Upstream Reason", headers=case.headers)
    request = RequestHead(method=case.method, target=case.target, headers=case.request_headers)
    body = case.body if held else None
    label = auto_template(case.target)
    result = apply_rewrites(rules, head, request, label, (_finding(FINDING),), body)

    if not hit:
        expected_outcome = None
    elif case.action in BODY_ACTIONS and not held:
        expected_outcome = "skipped"
    elif dry_run:
        expected_outcome = "dry_run"
    else:
        expected_outcome = case.action
    assert result.applied == (() if expected_outcome is None else (("r", expected_outcome),))
    if expected_outcome == case.action:
        assert result.head.status == case.expect_status
        assert result.head.headers == case.expect_headers
        assert result.drop_body is case.drop_body
        assert result.changed
    else:
        assert result.head == head
        assert not result.drop_body
        assert not result.changed


# ---------------------------------------------------------------- header actions


@pytest.mark.parametrize("status", [200, 201, 204, 301, 304, 404, 418, 500, 503])
def test_header_actions_apply_on_every_status(digg: Profile, status: int) -> None:
    """Unlike nginx's add_header without `always`, set/add/remove act on 4xx/5xx too."""
    rules = _rules(
        digg,
        {"name": "hsts", "set_header": {"Strict-Transport-Security": "max-age=63072000"}},
        {"name": "nosniff", "add_header_if_missing": {"X-Content-Type-Options": "nosniff"}},
        {"name": "quiet", "remove_header": "X-Powered-By"},
    )
    head = ResponseHead(status=status, headers=(("X-Powered-By", "Express"),))
    result = apply_rewrites(rules, head, RequestHead(method="GET", target="/"), "/", (), None)
    assert [outcome for _, outcome in result.applied] == [
        "set_header", "add_header_if_missing", "remove_header"
    ]  # fmt: skip
    assert result.head.headers == (
        ("Strict-Transport-Security", "max-age=63072000"), ("X-Content-Type-Options", "nosniff"),
    )  # fmt: skip


def test_set_header_replaces_every_field_in_place(digg: Profile) -> None:
    """All fields of the name become one, at the first one's place, spelt as configured."""
    (rule,) = _rules(digg, {"name": "cc", "set_header": {"Cache-Control": "no-store"}})
    head = ResponseHead(status=200, headers=(
        ("A", "1"), ("cache-control", "public"), ("B", "2"), ("CACHE-CONTROL", "max-age=5"),
    ))  # fmt: skip
    out = apply_rewrites((rule,), head, RequestHead(method="GET", target="/"), "/", (), b"")
    assert out.head.headers == (("A", "1"), ("Cache-Control", "no-store"), ("B", "2"))


def test_a_rule_that_changes_nothing_is_not_listed(digg: Profile) -> None:
    """set_header with the value already there, add_if_missing with the field present
    (even empty: Kong's add-if-absent surprise made explicit), remove of an absent field."""
    rules = _rules(
        digg,
        {"name": "same", "set_header": {"Cache-Control": "no-store"}},
        {"name": "present", "add_header_if_missing": {"Allow": "GET"}},
        {"name": "absent", "remove_header": ["Server"]},
    )
    head = ResponseHead(status=405, headers=(("Cache-Control", "no-store"), ("allow", "")))
    out = apply_rewrites(rules, head, RequestHead(method="PUT", target="/"), "/", (), b"")
    assert out.applied == ()
    assert out.head is head


def test_int_header_values_become_text(digg: Profile) -> None:
    """A YAML integer value is sent as its decimal text."""
    (rule,) = _rules(digg, {"name": "ra", "add_header_if_missing": {"Retry-After": 5}})
    out = apply_rewrites(
        (rule,), ResponseHead(status=503), RequestHead(method="GET", target="/"), "/", (), None
    )
    assert out.head.header("Retry-After") == "5"


# ---------------------------------------------------------------- map_status and framing


def _map(digg: Profile, to: int, when_empty: bool = False) -> tuple[RewriteRule, ...]:
    return _rules(digg, {"name": "m", "map_status": {"to": to, "when_empty": when_empty}})


def test_map_status_when_empty_leaves_a_body_alone(digg: Profile) -> None:
    """`when_empty: true` with a non-empty body: not applied, not listed."""
    head = ResponseHead(status=200, headers=(("Content-Length", "2"),))
    out = apply_rewrites(
        _map(digg, 204, True), head, RequestHead(method="DELETE", target="/x"), "/x", (), b"{}"
    )
    assert (out.applied, out.head, out.drop_body) == ((), head, False)


@pytest.mark.parametrize("to", [204, 304])
def test_map_to_no_content_drops_framing_and_body(digg: Profile, to: int) -> None:
    """To 204/304: no Content-Length or Transfer-Encoding, the reason follows, the body goes
    (no when_empty: it applies without the body)."""
    head = ResponseHead(status=200, reason="OK", headers=(
        ("Transfer-Encoding", "chunked"), ("Content-Length", "10"), ("ETag", '"x"'),
    ))  # fmt: skip
    out = apply_rewrites(_map(digg, to), head, RequestHead(method="GET", target="/"), "/", (), None)
    assert out.applied == (("m", "map_status"),)
    assert out.head.status == to
    assert out.head.reason == {204: "No Content", 304: "Not Modified"}[to]
    assert out.head.headers == (("ETag", '"x"'),)
    assert out.drop_body


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_map_from_no_content_sets_an_empty_length(digg: Profile, method: str) -> None:
    """From 204 to 200 the client gets an empty body, and Content-Length says so."""
    head = ResponseHead(status=204, reason="No Content", headers=(("Content-Length", "0"),))
    out = apply_rewrites(
        _map(digg, 200), head, RequestHead(method=method, target="/"), "/", (), b""
    )
    assert (out.head.status, out.head.reason) == (200, "OK")
    assert out.head.headers == (("Content-Length", "0"),)
    assert not out.drop_body


def test_map_between_statuses_with_content_keeps_the_length(digg: Profile) -> None:
    """200 -> 404 keeps the body and its Content-Length; the upstream's reason is replaced."""
    head = ResponseHead(status=200, reason="Fine", headers=(("Content-Length", "7"),))
    out = apply_rewrites(
        _map(digg, 404), head, RequestHead(method="GET", target="/"), "/", (), None
    )
    assert (out.head.status, out.head.reason, out.head.headers) == (
        404, "Not Found", (("Content-Length", "7"),)
    )  # fmt: skip
    assert not out.drop_body


def test_upstream_204_with_length_is_framed_even_without_a_matching_rule(digg: Profile) -> None:
    """The result of apply_rewrites never carries Content-Length on a 204, even when the
    upstream sent one and no rule matched (classification still sees the original)."""
    head = ResponseHead(status=204, headers=(("Content-Length", "0"), ("X-A", "1")))
    rules = _rules(digg, {"name": "n", "match": {"status": 500}, "remove_header": "X-A"})
    for rs in (rules, ()):
        out = apply_rewrites(rs, head, RequestHead(method="GET", target="/"), "/", (), b"")
        assert out.head.headers == (("X-A", "1"),)
        assert out.applied == ()
        assert not out.drop_body


def test_rules_see_the_head_the_previous_left_but_findings_stay_the_upstreams(
    digg: Profile,
) -> None:
    """match.status is the current status (after an earlier map_status); match.finding is
    about the upstream's response whatever the rules did."""
    rules = _rules(
        digg,
        {"name": "to-204", "match": {"status": 200}, "map_status": {"to": 204}},
        {"name": "on-200", "match": {"status": 200}, "set_header": {"X-Was": "200"}},
        {"name": "on-204", "match": {"status": 204}, "set_header": {"X-Now": "204"}},
        {"name": "on-finding", "match": {"finding": "RFC9110-200-EMPTY"},
         "set_header": {"X-Finding": "yes"}},
    )  # fmt: skip
    out = apply_rewrites(
        rules, ResponseHead(status=200), RequestHead(method="GET", target="/"), "/",
        (_finding("RFC9110-200-EMPTY"),), b"",
    )  # fmt: skip
    assert [name for name, _ in out.applied] == ["to-204", "on-204", "on-finding"]


def test_a_dry_run_does_not_feed_later_rules(digg: Profile) -> None:
    """A dry-run map_status is counted but later rules still see the old status."""
    rules = _rules(
        digg,
        {"name": "dry", "map_status": {"to": 204}, "dry_run": True},
        {"name": "on-200", "match": {"status": [200]}, "set_header": {"X-Seen": "200"}},
    )
    out = apply_rewrites(
        rules, ResponseHead(status=200), RequestHead(method="GET", target="/"), "/", (), None
    )
    assert out.applied == (("dry", "dry_run"), ("on-200", "set_header"))
    assert out.head.status == 200
    assert not out.drop_body


# ---------------------------------------------------------------- cors_origin


def _cors(
    digg: Profile, acao: tuple[str, ...], origin: str | None, vary: tuple[str, ...] = ()
) -> ResponseHead:
    allow = ["https://app.example", "http://localhost:3000"]
    (rule,) = _rules(digg, {"name": "c", "cors_origin": {"allow": allow}})
    headers = tuple(("Access-Control-Allow-Origin", v) for v in acao)
    headers += tuple(("Vary", v) for v in vary)
    req = RequestHead(method="GET", target="/", headers=(("Origin", origin),) if origin else ())
    return apply_rewrites(
        (rule,), ResponseHead(status=200, headers=headers), req, "/", (), None
    ).head


@pytest.mark.parametrize(
    ("acao", "origin", "vary", "expect_acao", "expect_vary"),
    [
        (("*",), "http://localhost:3000", (), ["http://localhost:3000"], ["Origin"]),
        ((" * ",), "https://app.example", ("accept",), ["https://app.example"], ["accept, Origin"]),
        (("*",), "https://app.example", ("origin, accept",), ["https://app.example"],
         ["origin, accept"]),
        (("*",), "https://app.example", ("*",), ["https://app.example"], ["*"]),
        (("*",), "https://evil.example", (), ["*"], []),
        (("*",), None, (), ["*"], []),
        (("https://other.example",), "https://app.example", (), ["https://other.example"], []),
        ((), "https://app.example", (), [], []),
        (("*", "*"), "https://app.example", (), ["*", "*"], []),
    ],
)  # fmt: skip
def test_cors_origin(
    digg: Profile,
    acao: tuple[str, ...],
    origin: str | None,
    vary: tuple[str, ...],
    expect_acao: list[str],
    expect_vary: list[str],
) -> None:
    """Only a lone wildcard ACAO, and only for a listed Origin, becomes that origin;
    Vary gains Origin unless it already lists it or is *."""
    head = _cors(digg, acao, origin, vary)
    assert head.headers_all("Access-Control-Allow-Origin") == expect_acao
    assert head.headers_all("Vary") == expect_vary


def test_cors_vary_with_non_ascii_gets_its_own_field(digg: Profile) -> None:
    """A Vary value that is not plain ASCII is left as it is; Origin comes in a field of its own."""
    head = _cors(digg, ("*",), "https://app.example", ("Accept, Ünicode",))
    assert head.headers_all("Vary") == ["Accept, Ünicode", "Origin"]


# ---------------------------------------------------------------- location_from_body


def _location(
    digg: Profile, status: int, body: bytes | None, headers: tuple[tuple[str, str], ...] = ()
) -> tuple[ResponseHead, tuple[tuple[str, str], ...]]:
    (rule,) = _rules(digg, {"name": "loc", "location_from_body": {
        "field": "id", "template": "https://api.example/orders/{id}?v={id}"}})  # fmt: skip
    out = apply_rewrites(
        (rule,), ResponseHead(status=status, headers=headers),
        RequestHead(method="POST", target="/orders"), "/orders", (), body,
    )  # fmt: skip
    return out.head, out.applied


@pytest.mark.parametrize(
    ("status", "body", "location"),
    [
        (201, b'{"id": 42}', "https://api.example/orders/42?v=42"),
        (202, b'{"id": "\xc3\xa5/\\u00e9?"}', "https://api.example/orders/%C3%A5%2F%C3%A9%3F?v=%C3%A5%2F%C3%A9%3F"),
        (201, b'{"id": true}', None),
        (201, b'{"id": 1.5}', None),
        (201, b'{"id": ""}', None),
        (201, b'{"data": {"id": 1}}', None),
        (201, b'[{"id": 1}]', None),
        (201, b"id=1", None),
        (201, b"\xff\xfe{", None),
        (201, b"[" * 100_000, None),
        (201, b'{"id": "' + b"x" * MAX_HEADER_VALUE + b'"}', None),
        (200, b'{"id": 1}', None),
    ],
)  # fmt: skip
def test_location_from_body(digg: Profile, status: int, body: bytes, location: str | None) -> None:
    """A string or integer top-level member, percent-encoded into every {field}; anything
    else (wrong type, nested, not JSON, too long, not 201/202) leaves the head alone."""
    head, applied = _location(digg, status, body)
    assert head.header("Location") == location
    assert applied == ((("loc", "location_from_body"),) if location else ())
    if location:
        assert location.isascii()


def test_location_present_or_wrong_status_is_decided_without_the_body(digg: Profile) -> None:
    """A 201 that has a Location, or a 200, is not `skipped` when the body was streamed:
    the head alone says there is nothing to do."""
    for status, headers in ((201, (("location", "/o/1"),)), (200, ())):
        head, applied = _location(digg, status, None, headers)
        assert applied == ()
        assert head.headers == headers
    assert _location(digg, 201, None)[1] == (("loc", "skipped"),)


# ---------------------------------------------------------------- route matching


@pytest.mark.parametrize(
    ("routes", "path", "label", "hit"),
    [
        (["/orders"], "/orders", "/orders", True),
        (["/orders"], "/orders/1/lines", "/orders/{id}/lines", True),
        (["/orders/"], "/orders/1", "/orders/{id}", True),
        (["/orders"], "/ordersx", "/ordersx", False),
        (["/"], "/anything", "/anything", True),
        (["/orders/{id}"], "/orders/7", "/orders/{id}", True),
        (["/orders/{id}"], "/orders/7/", "/orders/{id}", True),
        (["/orders/{id}"], "/orders/7/lines", "/orders/{id}/lines", False),
        (["/orders/{id}/lines/{line}"], "/orders/7/lines/x", "other", True),
        (["/orders/{order_id}"], "/orders/abc", "/orders/{order_id}", True),
        (["/orders/{id}"], "/orders", "/orders", False),
        (["/customers", "/orders/{id}"], "/orders/1", "/orders/{id}", True),
        (["/orders"], "/orders/../admin", "/admin", False),
        (["/orders/{id}"], "/admin/%2e%2e/orders/1", "/orders/{id}x", True),
    ],
)  # fmt: skip
def test_route_match(digg: Profile, routes: list[str], path: str, label: str, hit: bool) -> None:
    """Prefixes match by path segment as routes: prefixes do; templates match one segment
    per placeholder (the query string is not part of the path)."""
    (rule,) = _rules(digg, {"name": "r", "match": {"routes": routes}, "set_header": {"X": "1"}})
    req = RequestHead(method="GET", target=path + "?q=1")
    out = apply_rewrites((rule,), ResponseHead(status=200), req, label, (), None)
    assert bool(out.applied) is hit


def test_no_rules_is_the_same_head(digg: Profile) -> None:
    """With no rules the head comes back as it was (the proxy's fast path)."""
    head = ResponseHead(status=200, headers=(("Content-Length", "3"),))
    out = apply_rewrites((), head, RequestHead(method="GET", target="/"), "/", (), None)
    assert out.head is head
    assert out.applied == ()
    assert not out.drop_body


# ---------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("rule", "where", "value"),
    [
        ("{name: a, set_headers: {X: '1'}}", "rewrite[0] (a).set_headers", "unknown action"),
        ("{name: a, match: {status: 200}}", "rewrite[0] (a)", "no action"),
        ("{name: a, set_header: {X: '1'}, remove_header: [Y]}", "rewrite[0] (a).remove_header",
         "set_header, remove_header"),
        ("{name: a, match: {finding: ARP.03.LOCATION-210}, set_header: {X: '1'}}",
         "rewrite[0] (a).match.finding", "'ARP.03.LOCATION-210'"),
        ("{name: a, location_from_body: {field: id, template: '/orders/{oid}'}}",
         "rewrite[0] (a).location_from_body.template", "'/orders/{oid}'"),
        ("{name: a, location_from_body: {field: id, template: /orders}}",
         "rewrite[0] (a).location_from_body.template", "'/orders'"),
        ("{name: a, location_from_body: {field: id, template: '/o/{id'}}",
         "rewrite[0] (a).location_from_body.template", "'/o/{id'"),
        ("{name: a, location_from_body: {field: id, template: '/o /{id}'}}",
         "rewrite[0] (a).location_from_body.template", "'/o /{id}'"),
        ("{name: a, location_from_body: {template: '/o/{id}'}}",
         "rewrite[0] (a).location_from_body.field", "missing"),
        ("{name: a, map_status: {to: 99}}", "rewrite[0] (a).map_status.to", "99"),
        ("{name: a, map_status: {to: 205}}", "rewrite[0] (a).map_status.to", "205"),
        ("{name: a, map_status: {to: '204'}}", "rewrite[0] (a).map_status.to", "'204'"),
        ("{name: a, map_status: {to: 204, when_empty: maybe}}",
         "rewrite[0] (a).map_status.when_empty", "'maybe'"),
        ("{name: a, map_status: {to: 204, if_empty: true}}",
         "rewrite[0] (a).map_status.if_empty", "unknown key"),
        ("{name: a, match: {status: [200, 700]}, set_header: {X: '1'}}",
         "rewrite[0] (a).match.status", "700"),
        ("{name: a, match: {path: /orders}, set_header: {X: '1'}}",
         "rewrite[0] (a).match.path", "unknown key"),
        ("{name: a, match: {routes: [orders]}, set_header: {X: '1'}}",
         "rewrite[0] (a).match.routes", "'orders'"),
        ("{name: a, match: {methods: ['GET POST']}, set_header: {X: '1'}}",
         "rewrite[0] (a).match.methods", "'GET POST'"),
        ("{match: {status: 200}, set_header: {X: '1'}}", "rewrite[0].name", "missing"),
        ("{name: '', set_header: {X: '1'}}", "rewrite[0].name", "''"),
        ("{name: a, set_header: {X-Note: 'café'}}", "rewrite[0] (a).set_header.X-Note", "café"),
        ("{name: a, set_header: {X-Note: \"a\\nb\"}}", "rewrite[0] (a).set_header.X-Note",
         "'a\\nb'"),
        ("{name: a, add_header_if_missing: {Content-Length: '0'}}",
         "rewrite[0] (a).add_header_if_missing.Content-Length", "'Content-Length'"),
        ("{name: a, remove_header: [Transfer-Encoding]}", "rewrite[0] (a).remove_header",
         "'Transfer-Encoding'"),
        ("{name: a, set_header: {'X Y': '1'}}", "rewrite[0] (a).set_header.X Y", "'X Y'"),
        ("{name: a, set_header: {}}", "rewrite[0] (a).set_header", "{}"),
        ("{name: a, cors_origin: {allow: ['*']}}", "rewrite[0] (a).cors_origin.allow", "'*'"),
        ("{name: a, cors_origin: {allow: ['https://app.example/x']}}",
         "rewrite[0] (a).cors_origin.allow", "'https://app.example/x'"),
        ("{name: a, remove_header: [X], dry_run: 'yes'}", "rewrite[0] (a).dry_run", "'yes'"),
    ],
)  # fmt: skip
def test_config_errors_name_file_rule_key_and_value(
    tmp_path: Path, rule: str, where: str, value: str
) -> None:
    """Each mistake in a rule raises ConfigError naming the file, the rule by index and
    name, the key and the value."""
    text = "rewrite:\n  - {name: fine, remove_header: [X-Powered-By]}\n  - " + rule + "\n"
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, text)
    assert exc.value.source == str(tmp_path / "auditproxy.yaml")
    assert exc.value.where == where.replace("[0]", "[1]")
    assert value in exc.value.what
    assert str(tmp_path / "auditproxy.yaml") in str(exc.value)


def test_non_ascii_header_value_says_why(tmp_path: Path) -> None:
    """A non-ASCII value is refused as such: clients have crashed on them (Prism)."""
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, "rewrite:\n  - {name: a, set_header: {X-Team: Ångström}}\n")
    assert exc.value.where == "rewrite[0] (a).set_header.X-Team"
    assert exc.value.what == "got 'Ångström', expected ASCII only (added values are ASCII)"


def test_unknown_finding_suggests_the_nearest_rule(tmp_path: Path) -> None:
    """An unknown finding id is checked against the loaded profile and a near one suggested."""
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, "rewrite:\n  - {name: a, match: {finding: ARP.03.LOCATION-210}, "
                        "remove_header: X}\n")  # fmt: skip
    assert "profile digg" in exc.value.what
    assert "did you mean ARP.03.LOCATION-201?" in exc.value.what


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    """Two rules with one name would share a metric label: refused, naming both."""
    with pytest.raises(ConfigError) as exc:
        _load(
            tmp_path, "rewrite:\n  - {name: a, remove_header: X}\n  - {name: a, remove_header: Y}\n"
        )
    assert exc.value.where == "rewrite[1] (a).name"
    assert "rewrite[0]" in exc.value.what


def test_finding_of_a_custom_profile(digg: Profile) -> None:
    """`finding` is checked against the profile actually loaded, not a fixed list."""
    rule = {"name": "a", "match": {"finding": "RFC9110-405-ALLOW"}, "remove_header": "X"}
    assert compile_rewrites([rule], digg, source="s")
    fewer = Profile(name="mine", version="1", rules=())
    with pytest.raises(ConfigError, match="expected a rule id of profile mine"):
        compile_rewrites([rule], fewer, source="s")


def test_rewrite_must_be_a_list_of_mappings(tmp_path: Path) -> None:
    """The settings layer still refuses a rewrite: that is not a list of mappings."""
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, "rewrite: {name: a}\n")
    assert exc.value.where == "rewrite"


# ---------------------------------------------------------------- annotate


def test_annotation_lists_distinct_ids_in_order() -> None:
    """Rule ids in the order found, each once, comma separated; empty for no findings."""
    ids = ["B", "A", "B", "C"]
    assert annotation(_finding(i) for i in ids) == "B, A, C"
    assert annotation(()) == ""


def test_annotation_is_bounded_with_a_count_of_the_rest() -> None:
    """At most 512 bytes; the ids that did not fit are counted as +N more."""
    ids = [f"RULE-{i:03d}-{'X' * 20}" for i in range(40)]
    value = annotation(_finding(i) for i in ids)
    assert len(value.encode()) <= ANNOTATION_MAX
    shown = value.split(", ")[:-1]
    assert shown == ids[: len(shown)]
    assert value.endswith(f", +{len(ids) - len(shown)} more")
    assert annotation([_finding("X" * 600)]) == "+1 more"


def test_annotation_reserves_room_for_the_count() -> None:
    """Ids that fill exactly 512 bytes are shown whole only when nothing follows; with a
    third id the count must fit too, so the second one goes."""
    two = [_finding("A" * 255), _finding("B" * 255)]
    assert annotation(two) == f"{'A' * 255}, {'B' * 255}"
    assert len(annotation(two)) == ANNOTATION_MAX
    assert annotation([*two, _finding("C")]) == f"{'A' * 255}, +2 more"


def test_annotation_is_ascii_whatever_the_rule_ids() -> None:
    """A profile's non-ASCII or comma-bearing id is masked, never sent as is (Prism's crash)."""
    value = annotation([_finding("RÄTT.01"), _finding("A,B C")])
    assert value == "R?TT.01, A?B?C"
    assert value.isascii()


@pytest.mark.parametrize(
    ("setting", "headers", "wanted"),
    [
        (True, (), True),
        (False, (("X-Audit-Debug", "1"),), False),
        ("request", (), False),
        ("request", (("x-audit-debug", " 1 "),), True),
        ("request", (("X-Audit-Debug", "0"),), False),
        ("request", (("X-Audit-Debug", "true"),), False),
    ],
)
def test_annotate_wanted(setting: Any, headers: tuple[tuple[str, str], ...], wanted: bool) -> None:
    """true: always; false: never; request: only with X-Audit-Debug: 1."""
    assert annotate_wanted(setting, headers) is wanted


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("false", False), ("request", "request"), ("Request", "request"),
     ("'yes'", True)],
)  # fmt: skip
def test_annotate_setting(tmp_path: Path, text: str, value: object) -> None:
    """`annotate:` takes true, false or request, from the file and from the env."""
    f = tmp_path / "a.yaml"
    f.write_text(f"upstream: http://a:1\nannotate: {text}\n")
    assert load_settings(str(f), env={}).annotate == value
    env = {"AUDITPROXY_ANNOTATE": "request"}
    assert load_settings(str(f), env=env).annotate == "request"


def test_annotate_setting_error_names_the_choices(tmp_path: Path) -> None:
    """A bad annotate value names the file, the key, the value and what is accepted."""
    f = tmp_path / "a.yaml"
    f.write_text("upstream: http://a:1\nannotate: sometimes\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(str(f), env={})
    assert (exc.value.source, exc.value.where) == (str(f), "annotate")
    assert "'sometimes'" in exc.value.what
    assert "expected true, false or request" in exc.value.what


# ---------------------------------------------------------------- properties


@functools.cache
def _pool_rules() -> tuple[RewriteRule, ...]:
    """The SPEC example plus status maps in every direction, compiled once."""
    raw = yaml.safe_load(SPEC_EXAMPLE)["rewrite"]
    raw += [{"name": f"to-{to}", "map_status": {"to": to}} for to in (200, 204, 304, 404)]
    raw += [{"name": "to-204-empty", "map_status": {"to": 204, "when_empty": True}}]
    return compile_rewrites(raw, load_profile("digg"), source="pool")


_NAMES = ["Content-Length", "Transfer-Encoding", "Location", "Vary", "Server", "X-Powered-By",
          "Access-Control-Allow-Origin", "Allow", "Cache-Control", "ETag"]  # fmt: skip
_values = st.one_of(
    st.sampled_from(["*", "0", "12", "chunked", "Accept", "gzip, x", "/o/1", ""]),
    st.text(max_size=30),
)
_heads = st.builds(
    lambda status, headers: ResponseHead(status=status, headers=tuple(headers)),
    st.sampled_from([200, 201, 202, 204, 304, 404, 405, 500]),
    st.lists(st.tuples(st.sampled_from(_NAMES), _values), max_size=8),
)
_requests = st.builds(
    lambda method, path, origin: RequestHead(
        method=method, target=path, headers=(("Origin", origin),) if origin else ()
    ),
    st.sampled_from(["GET", "HEAD", "POST", "DELETE"]),
    st.sampled_from(["/", "/orders", "/orders/1", "/other"]),
    st.sampled_from([None, "https://app.example", "https://x.example"]),
)
_bodies = st.one_of(
    st.none(), st.just(b""), st.binary(max_size=40),
    st.builds(lambda v: json.dumps({"id": v}).encode(),
              st.one_of(st.text(max_size=40), st.integers())),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    head=_heads,
    request=_requests,
    picks=st.lists(st.integers(min_value=0, max_value=10), max_size=6),
    body=_bodies,
    finding=st.booleans(),
)
def test_framing_invariants(
    head: ResponseHead, request: RequestHead, picks: list[int], body: bytes | None, finding: bool
) -> None:
    """Whatever the head and the rules: a 204/304 result has no Content-Length or
    Transfer-Encoding; every field a rewrite added is ASCII and bounded; Content-Length
    is the upstream's (the body is unchanged), or 0 when a no-content status was mapped
    to one with content; drop_body exactly when mapped into 204/304."""
    pool = _pool_rules()
    rules = tuple(pool[i] for i in picks)
    findings = (_finding("ARP.03.LOCATION-201"),) if finding else ()
    out = apply_rewrites(rules, head, request, "/orders", findings, body)
    lengths = out.head.headers_all("Content-Length")
    if out.head.status in (204, 304):
        assert not lengths
        assert not out.head.headers_all("Transfer-Encoding")
    elif head.status in (204, 304) and out.head.status != head.status:
        assert lengths == ["0"]
    else:
        assert lengths == head.headers_all("Content-Length")
    assert out.drop_body is (out.head.status in (204, 304) and head.status not in (204, 304))
    for pair in set(out.head.headers) - set(head.headers):
        assert pair[1].isascii(), pair
        assert len(pair[1]) <= MAX_HEADER_VALUE, pair
    assert {name for name, _ in out.applied} <= {r.name for r in rules}
    if out.head.status != head.status:
        assert out.head.reason == reason_phrase(out.head.status)
    else:
        assert out.head.reason == head.reason or out.changed


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=80), max_size=60))
def test_annotation_bound(ids: list[str]) -> None:
    """The annotation is ASCII, at most 512 bytes, and accounts for every distinct id:
    those shown plus the ``+N more`` count."""
    value = annotation(_finding(i) for i in ids)
    assert value.isascii()
    assert len(value.encode()) <= ANNOTATION_MAX
    masked = {"".join(c if "!" <= c <= "~" and c != "," else "?" for c in i) for i in ids}
    parts = value.split(", ") if value else []
    more = re.fullmatch(r"\+(\d+) more", parts[-1]) if parts else None
    shown = parts[:-1] if more else parts
    assert set(shown) <= masked
    assert len(shown) + (int(more.group(1)) if more else 0) == len(masked)
