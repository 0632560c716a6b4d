"""The engine's per-exchange shortcuts: one header index, one JSON parse shared by
the body checks, the size limit of RFC8259-JSON-PARSE and its framing check, and
the per-method dispatch cache. Each must give the same findings as the plain way."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditproxy.core import checkctx, checks
from auditproxy.core.engine import Profile, audit, compile_profile
from auditproxy.profiles import load_profile
from tests.helpers import count_json_loads

from .conftest import IMF_DATE, make_exchange

JSON_HDRS = {"Date": IMF_DATE, "Content-Type": "application/json"}
BIG = json.dumps({"items": [{"id": i, "item": "widget", "qty": 2} for i in range(1000)]})


def _rules(profile: Profile, ex: Any) -> list[str]:
    return [f.rule for f in audit(ex, profile)]


@pytest.fixture
def loads_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the engine's calls to json.loads."""
    return count_json_loads(monkeypatch, checks)


def test_large_valid_body_is_not_parsed(digg: Profile, loads_calls: list[int]) -> None:
    """A JSON body over max_bytes passes without a json.loads call."""
    assert len(BIG) > 16384
    assert _rules(digg, make_exchange("GET", 200, JSON_HDRS, BIG.encode())) == []
    assert loads_calls == []


def test_large_html_body_is_still_flagged(digg: Profile) -> None:
    """An HTML page over max_bytes declared as JSON is flagged by the framing check."""
    page = b"<html>" + b"x" * 20000 + b"</html>"
    findings = audit(make_exchange("GET", 200, JSON_HDRS, page), digg)
    assert [f.rule for f in findings] == ["RFC8259-JSON-PARSE"]
    assert "starts with '<'" in findings[0].message
    assert "over 16384 bytes" in findings[0].message


def test_large_cut_off_document_is_flagged(digg: Profile) -> None:
    """A complete sample over max_bytes that stops mid-object is flagged."""
    cut = BIG[:-3].encode()
    findings = audit(make_exchange("GET", 200, JSON_HDRS, cut), digg)
    assert [f.rule for f in findings] == ["RFC8259-JSON-PARSE"]


def test_max_bytes_zero_parses_every_body(loads_calls: list[int]) -> None:
    """With max_bytes 0 an error in the middle of a large body is found."""
    profile = load_profile("digg", {"RFC8259-JSON-PARSE": {"params": {"max_bytes": 0}}})
    broken = BIG.replace('"qty": 2}', '"qty": 2,}', 1).encode()
    assert _rules(load_profile("digg"), make_exchange("GET", 200, JSON_HDRS, broken)) == []
    assert _rules(profile, make_exchange("GET", 200, JSON_HDRS, broken)) == ["RFC8259-JSON-PARSE"]
    assert loads_calls == [1]


def test_problem_document_is_parsed_once(digg: Profile, loads_calls: list[int]) -> None:
    """JSON-PARSE, FEL.01 and RFC9457 share one parse of a problem document."""
    doc = json.dumps({"title": "Not Found", "status": 400}).encode()
    hdrs = {"Date": IMF_DATE, "Content-Type": "application/problem+json"}
    rules = _rules(digg, make_exchange("GET", 404, hdrs, doc))
    assert rules == ["FEL.01.MEMBERS", "RFC9457-STATUS-MATCH"]
    assert loads_calls == [1]


def test_head_only_exchange_never_parses(digg: Profile, loads_calls: list[int]) -> None:
    """A text body needs no JSON parse at all (it is only reported as not JSON, AME.01)."""
    hdrs = {"Date": IMF_DATE, "Content-Type": "text/plain"}
    assert _rules(digg, make_exchange("GET", 200, hdrs, b"{not json")) == [
        "AME.01.JSON-REPRESENTATION"
    ]
    assert loads_calls == []


def test_header_names_match_in_any_case(digg: Profile) -> None:
    """Response header names match whatever their case, and repeats are all seen."""
    hdrs = {"DATE": IMF_DATE, "content-TYPE": "application/json", "etag": '"a"', "ETag": '"b"'}
    findings = audit(make_exchange("GET", 200, hdrs, b"{}"), digg)
    # two valid entity-tags on two lines: the repetition is the finding, not the syntax
    assert [f.rule for f in findings] == ["RFC9110-SINGLETON-REPEATED"]
    assert '"a" | "b"' in findings[0].message
    ctx = checks.Ctx(make_exchange("GET", 200, hdrs), digg)
    assert ctx.header("Content-Type") == ctx.header("content-type") == "application/json"
    assert ctx.header("x-missing") is None


def test_method_dispatch_caches_only_known_methods(digg: Profile) -> None:
    """Method filters hold for cached and uncached methods; odd methods are not cached."""
    profile = Profile(name=digg.name, version=digg.version, matrix=digg.matrix,
                      handling=digg.handling, rules=digg.rules)  # fmt: skip
    hdrs = {"Date": IMF_DATE, "Content-Length": "1"}
    for _ in range(2):
        assert "RFC9110-HEAD-NO-CONTENT" in _rules(profile, make_exchange("HEAD", 200, hdrs, b"x"))
        assert "RFC9110-HEAD-NO-CONTENT" not in _rules(
            profile, make_exchange("BREW", 200, hdrs, b"x")
        )
    cached = {m for _, m in compile_profile(profile)["all"].by_method}
    assert cached == {"HEAD"}


_JSONISH = st.lists(
    st.sampled_from(['{', '}', '[', ']', '"', '1', '-', ' ', '\n', 'a', 'true', 'null', ':',
                     ',', '\ufeff', '\x00', '<', 'e', 'l', 'é', 'NaN', '0', '{"a":1}']),
    max_size=8,
).map("".join)  # fmt: skip


@settings(max_examples=int(os.environ.get("AUDITPROXY_HYPOTHESIS_EXAMPLES", "300")))
@given(text=st.one_of(_JSONISH, st.text(max_size=12)), encoding=st.sampled_from(
    ["utf-8", "utf-8-sig", "utf-16"]))  # fmt: skip
def test_framing_check_never_flags_parseable_json(text: str, encoding: str) -> None:
    """Whatever json.loads accepts, the framing check accepts too."""
    raw = text.encode(encoding, errors="surrogatepass")
    try:
        json.loads(raw, parse_constant=checkctx.reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return
    assert checks.json_framing_error(raw) is None
