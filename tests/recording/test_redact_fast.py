"""The redaction fast path: a body that mentions no secret field name (and has no
``\\u`` escape that could spell one) is returned as is without a parse; every other
body goes through the full parse-and-walk, so the result is the same as before."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditproxy.core import redact
from auditproxy.core.redact import REDACTED, Redaction
from tests.helpers import count_json_loads

R = Redaction.build(json_fields=("pin",))


def reference_body_text(r: Redaction, text: str, *, mime: str, complete: bool) -> str | None:
    """The redaction without the fast path: always parse and walk what looks like JSON."""
    lmime = mime.lower()
    if "x-www-form-urlencoded" in lmime:
        return r.query(text, r.json_fields)
    if not ("json" in lmime or text.lstrip()[:1] in ("{", "[")):
        return text
    if complete:
        try:
            parsed = json.loads(text)
        except ValueError:
            pass
        else:
            if not isinstance(parsed, dict | list):
                return text
            redacted = r.json_value(parsed)
            if redacted == parsed:
                return text
            return json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
    low = text.lower()
    leak = "\\u" in low or any(n in low for n in r.json_fields)
    return None if leak else text


@pytest.fixture
def loads_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts redaction's calls to json.loads."""
    return count_json_loads(monkeypatch, redact)


def test_body_without_secret_names_is_kept_unparsed(loads_calls: list[int]) -> None:
    """A large JSON body with no field name in it comes back as the same text, unparsed."""
    text = json.dumps({"items": [{"id": i, "item": "widget"} for i in range(2000)]})
    assert R.body_text(text, mime="application/json", complete=True) is text
    cut = text[:-5]
    assert R.body_text(cut, mime="application/json", complete=False) is cut
    assert loads_calls == []


@pytest.mark.parametrize(
    "key",
    ["password", "Password", "ACCESS_TOKEN", "pin", "\\u0070assword", "api_\u212aey"],
)
def test_body_with_a_secret_field_is_still_redacted(key: str, loads_calls: list[int]) -> None:
    """Secret members are redacted at any depth and in any spelling; the value never survives."""
    text = '{"user": {"name": "a", "' + key + '": "hunter2"}, "list": [1, 2]}'
    out = R.body_text(text, mime="application/json", complete=True)
    assert loads_calls == [1]
    assert out is not None
    assert "hunter2" not in out
    assert json.loads(out)["user"]["name"] == "a"
    assert REDACTED in out


def test_needles_are_the_names_that_contain_no_other() -> None:
    """Configured names that contain others are covered by the shorter name's search."""
    r = Redaction.build(json_fields=("key",))
    assert "key" in r._needles
    assert "api_key" not in r._needles
    assert "access_token" not in r._needles
    assert r.mentions_secret('{"My_API_KEY": 1}')
    assert not r.mentions_secret('{"widget": 1}')


_KEYS = st.sampled_from(["password", "Token", "id", "name", "PIN", "api_key", "x\\u0041",
                         "secretive", "\\u0074oken", "note"])  # fmt: skip
_VALUES = st.recursive(
    st.one_of(st.integers(), st.text(max_size=8), st.none(), _KEYS),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=int(os.environ.get("AUDITPROXY_HYPOTHESIS_EXAMPLES", "300")))
@given(
    doc=_VALUES,
    cut=st.integers(min_value=0, max_value=8),
    mime=st.sampled_from(["application/json", "text/plain", "application/problem+json"]),
)
def test_fast_path_gives_the_same_result_as_the_full_walk(doc: Any, cut: int, mime: str) -> None:
    """For complete and truncated JSON bodies the result equals the parse-and-walk result."""
    text = json.dumps(doc, ensure_ascii=False).replace("\\\\u", "\\u")
    for t, complete in ((text, True), (text[: max(len(text) - cut, 0)], cut == 0)):
        expected = reference_body_text(R, t, mime=mime, complete=complete)
        assert R.body_text(t, mime=mime, complete=complete) == expected
