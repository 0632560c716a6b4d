"""The per-API tally beside the report (naming convention, api-info) and the report's
once-per-route counting of URL findings."""

from __future__ import annotations

import dataclasses
import json

import pytest

from auditproxy.core import checks
from auditproxy.core.bodywalk import date_problem, naming_style, walk
from auditproxy.core.conventions import ApiTally
from auditproxy.core.engine import Profile, audit
from auditproxy.core.report import Report, render_markdown, render_text
from auditproxy.core.routes import api_root, is_api_info
from tests.helpers import count_json_loads

from .conftest import IMF_DATE, make_exchange

JSON = {"Date": IMF_DATE, "Content-Type": "application/json"}


def _json_ex(doc: object, route: str, target: str = "/v1/orders/1") -> object:
    return make_exchange("GET", 200, JSON, json.dumps(doc).encode(), route=route, target=target)


def _feed(profile: Profile, *exchanges: object) -> Report:
    report = Report(profile)
    for ex in exchanges:
        report.add(ex, audit(ex, profile))  # type: ignore[arg-type]
    return report


def test_minority_convention_is_named_with_an_example(digg: Profile) -> None:
    """An API whose bodies are snake_case except one camelCase body reports camelCase as
    the minority, with its field and route; no single body mixes, so no AME.05 finding."""
    report = _feed(
        digg,
        _json_ex({"order_id": 1, "created_at": "2024-05-01"}, "/v1/orders/{id}"),
        _json_ex({"line_items": [{"unit_price": 3}]}, "/v1/orders/{id}/lines"),
        _json_ex({"customerId": 7}, "/v1/orders/{id}/customer"),
        _json_ex({"order_id": 2, "created_at": "2024-05-02"}, "/v1/orders/{id}"),
    )
    d = report.as_dict()
    assert "AME.05.NAMING-CONSISTENT" not in d["rules"]
    naming = d["apis"]["/v1"]["naming"]
    assert naming == {
        "camelCase": 1, "snake_case": 4, "convention": "snake_case",
        "minority": {"convention": "camelCase", "fields": 1, "example": "customerId",
                     "route": "/v1/orders/{id}/customer"},
    }  # fmt: skip
    for text in (render_text(d), render_markdown(d)):
        assert "snake_case, but 1 camelCase (e.g. customerId on /v1/orders/{id}/customer)" in text


def test_one_convention_has_no_minority(digg: Profile) -> None:
    """A consistently camelCase API names its convention and no minority."""
    report = _feed(digg, _json_ex({"orderId": 1}, "/v1/orders/{id}"))
    assert report.as_dict()["apis"]["/v1"]["naming"] == {
        "camelCase": 1, "snake_case": 0, "convention": "camelCase"
    }  # fmt: skip


def test_api_info_seen_or_never_seen(digg: Profile) -> None:
    """An API root whose GET api-info was observed is 'seen'; another is 'never seen'."""
    info = make_exchange("GET", 200, JSON, b"{}", route="/v1/api-info", target="/v1/api-info")
    legacy = make_exchange("GET", 200, JSON, b"{}", route="/legacy/orders/{id}",
                           target="/legacy/orders/1")  # fmt: skip
    gone = make_exchange("GET", 404, JSON, route="/v2/api-info", target="/v2/api-info")
    d = _feed(digg, info, legacy, _json_ex({"id": 1}, "/v1/orders/{id}"), gone).as_dict()
    assert d["apis"]["/v2"]["api_info"] == "answered 404"
    assert d["apis"]["/v1"]["api_info"] == "seen"
    assert d["apis"]["/v1"]["exchanges"] == 2
    assert d["apis"]["/legacy"]["api_info"] == "never seen"
    assert "never seen (VER.06)" in render_text(d)


def test_tally_is_bounded_and_follows_the_rules_switches(digg: Profile) -> None:
    """Past max_apis new roots fold into 'other'; names past max_names are only counted;
    with AME.05 and VER.06 off the tally keeps neither naming nor api-info."""
    tally = ApiTally(digg, max_apis=2, max_names=1)
    for root in ("/v1", "/v2", "/v3", "/v4"):
        tally.add(_json_ex({"a_b": 1, "c_d": 2}, f"{root}/x"))  # type: ignore[arg-type]
    d = tally.as_dict()
    assert set(d) == {"/v1", "/v2", "other"}
    assert d["other"]["exchanges"] == 2
    assert d["/v1"]["naming"]["snake_case"] == 2  # one kept, one counted past the bound
    off = {"AME.05.NAMING-CONSISTENT", "VER.06.API-INFO"}
    rules = tuple(dataclasses.replace(r, enabled=r.id not in off) for r in digg.rules)
    quiet = ApiTally(dataclasses.replace(digg, rules=rules))
    quiet.add(_json_ex({"a_b": 1}, "/v1/x"))  # type: ignore[arg-type]
    assert quiet.as_dict() == {"/v1": {"exchanges": 1}}


def test_engine_and_tally_parse_the_body_once(
    digg: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the live path (audit, then the report) a JSON body is parsed once; fed an
    exchange the engine did not just walk, the tally parses it itself, with the same result."""
    calls = count_json_loads(monkeypatch, checks)
    ex = _json_ex({"order_id": 1, "lineItems": 2}, "/v1/orders/{id}")
    report = Report(digg)
    report.add(ex, audit(ex, digg))  # type: ignore[arg-type]
    assert len(calls) == 1
    other = Report(digg)
    audit(_json_ex({"x_y": 1}, "/v1/y"), digg)  # another body was walked last
    other.add(ex, ())  # type: ignore[arg-type]
    assert len(calls) == 3
    assert other.apis.as_dict()["/v1"]["naming"] == report.apis.as_dict()["/v1"]["naming"]


def test_url_findings_count_once_per_route(digg: Profile) -> None:
    """A URL rule is counted once per route in the report, however many requests hit it;
    each of those exchanges is still non-compliant."""
    exchanges = [
        make_exchange(
            "GET", 200, JSON, b"{}", route="/v1/order_lines/{id}", target=f"/v1/order_lines/{i}"
        )
        for i in range(3)
    ]
    exchanges.append(make_exchange("GET", 200, JSON, b"{}", route="/v1/line_items",
                                   target="/v1/line_items"))  # fmt: skip
    d = _feed(digg, *exchanges).as_dict()
    rule = d["rules"]["UFN.09.NO-UNDERSCORE-SPACE"]
    assert (rule["count"], rule["per"]) == (2, "route")
    assert d["routes"]["/v1/order_lines/{id}"]["top_rules"] == [["UFN.09.NO-UNDERSCORE-SPACE", 1]]
    assert d["totals"]["noncompliant"] == 4
    assert "2 routes" in render_text(d)


@pytest.mark.parametrize(
    ("key", "style"),
    [("orderId", "camel"), ("order_id", "snake"), ("order", "word"), ("OrderId", "other"),
     ("ORDER_ID", "other"), ("order-id", "chars"), ("$ref", "chars"), ("2024-05-01", "data")],
)  # fmt: skip
def test_naming_style(key: str, style: str) -> None:
    assert naming_style(key) == style


@pytest.mark.parametrize(
    ("value", "problem"),
    [("2024-05-01", None), ("2024-05-01T08:30:00Z", None), ("2024-05-01T08:30:00.5+00:00", None),
     ("2024-05-01T08:30:00+02:00", "not-utc"), ("2024-05-01T08:30:00", "no-zone"),
     ("2024-05-01T08:30Z", "format"), ("01/05/2024", "format"), ("2024-02-30", "format"),
     ("2024-05-01T08:30:00+0200", "format")],
)  # fmt: skip
def test_date_problem(value: str, problem: str | None) -> None:
    assert date_problem(value) == problem


def test_walk_is_bounded_and_finds_paths() -> None:
    """The walk keeps distinct field names and date-like strings, finds their first
    paths on demand, and stops at its budget."""
    w = walk({"a": {"b": [{"c": "2024-05-01T08:30:00"}]}, "d": "hello", "e": {"c": 1}})
    assert w.keys == {"a", "b", "c", "d", "e"}
    assert w.dates == ("2024-05-01T08:30:00",)
    assert w.path_of(key="c") == "$.e.c"  # breadth-first: the shallowest
    assert w.path_of(value="2024-05-01T08:30:00") == "$.a.b[0].c"
    assert w.by_style()["word"] == ["a", "b", "c", "d", "e"]
    assert w.complete
    assert not walk([[i] for i in range(100)], max_nodes=10).complete


def test_api_roots() -> None:
    assert api_root("/v1/orders/{id}") == "/v1"
    assert api_root("/api/v2/orders") == "/api/v2"
    assert api_root("/orders/{id}") == "/orders"
    assert is_api_info("/v1/api-info")
    assert is_api_info("/api-info")
    assert not is_api_info("/v1/orders/api-info")
