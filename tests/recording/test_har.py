"""HAR entries: shape against the HAR 1.2 schema, round trip to Exchange, foreign HARs."""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonschema
import pytest

from auditproxy.core.engine import Profile, audit
from auditproxy.core.findings import RetryAdvice
from auditproxy.core.har import HAR_VERSION, from_har_entry, to_har_entry
from auditproxy.core.redact import REDACTED, Redaction
from tests.recording.factories import DATA, MISSING_LOCATION, make_exchange

SCHEMA = json.loads((DATA / "har-1.2.schema.json").read_text("utf-8"))


def to_har_log(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A HAR 1.2 document around ``entries``, as `auditproxy export` writes it."""
    creator = {"name": "auditproxy", "version": "test"}
    return {"log": {"version": HAR_VERSION, "creator": creator, "pages": [], "entries": entries}}


R = Redaction.build()


def entry_for(**kw: Any) -> dict[str, Any]:
    return to_har_entry(make_exchange(**kw), (MISSING_LOCATION,), RetryAdvice(advice="may"),
                        profile_name="digg", profile_version="v1", redaction=R)  # fmt: skip


def test_entry_is_valid_har_and_json() -> None:
    """An entry with bodies on both sides validates against the HAR 1.2 schema."""
    entry = entry_for(method="POST", target="/orders?x=1", req_body=b'{"a": 1}', status=201,
                      req_headers=(("Content-Type", "application/json"),))  # fmt: skip
    doc = json.loads(json.dumps(to_har_log([entry])))
    jsonschema.validate(doc, SCHEMA)
    assert entry["request"]["postData"]["text"] == '{"a": 1}'
    assert entry["request"]["queryString"] == [{"name": "x", "value": "1"}]
    assert entry["_audit"]["retry_advice"] == {"advice": "may", "condition": None}


def test_schema_rejects_a_broken_entry() -> None:
    """The schema really checks: an entry without timings fails."""
    entry = entry_for()
    del entry["timings"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(to_har_log([entry]), SCHEMA)


def test_round_trip_keeps_what_the_engine_reads(profile: Profile) -> None:
    """from_har_entry(to_har_entry(x)) gives the same findings as x itself."""
    ex = make_exchange(method="POST", target="/orders/42/lines", status=201,
                       resp_headers=(("Content-Type", "application/json"),
                                     ("Date", "Mon, 03 Jun 2024 07:33:20 GMT")))  # fmt: skip
    back = from_har_entry(json.loads(json.dumps(entry_for_ex(ex))))
    assert back.request.method == "POST"
    assert back.request.target == ex.request.target
    assert back.response.headers == ex.response.headers
    assert back.response_body == ex.response_body
    assert audit(back, profile) == audit(ex, profile)
    assert audit(ex, profile)  # the exchange does have findings to compare


def entry_for_ex(ex: Any) -> dict[str, Any]:
    return to_har_entry(ex, (), RetryAdvice(advice="never"), profile_name="digg",
                        profile_version="v1", redaction=R)  # fmt: skip


def test_redacted_body_round_trips_as_complete() -> None:
    """A redacted (shorter) complete body is read back as complete, not as truncated."""
    ex = make_exchange(resp_body=b'{"token": "a-very-long-secret-value-here", "id": 1}')
    back = from_har_entry(entry_for_ex(ex))
    assert back.response_body.truncated is False
    assert json.loads(back.response_body.sample) == {"token": REDACTED, "id": 1}


def test_binary_body_is_base64_and_round_trips() -> None:
    """A binary body is written base64 and decodes back to the same bytes."""
    raw = bytes(range(256))
    ex = make_exchange(resp_body=raw, resp_headers=(("Content-Type", "image/png"),))
    entry = entry_for_ex(ex)
    assert entry["response"]["content"]["encoding"] == "base64"
    assert base64.b64decode(entry["response"]["content"]["text"]) == raw
    assert from_har_entry(entry).response_body.sample == raw


def test_cut_multibyte_text_stays_text() -> None:
    """A UTF-8 character cut by max_body does not turn the body into base64."""
    ex = make_exchange(
        resp_body="åäö".encode() * 10, resp_headers=(("Content-Type", "text/plain"),)
    )
    entry = to_har_entry(ex, (), RetryAdvice(advice="never"), profile_name="p",
                         profile_version="1", redaction=R, max_body=5)  # fmt: skip
    content = entry["response"]["content"]
    assert content["text"] == "åä"
    assert "encoding" not in content
    assert content["_truncated"] is True
    assert content["size"] == 60


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"response": {"status": 200}}, "request"),
        ({"request": {"method": "GET", "url": "http://a/"}, "response": {"status": "x"}}, "status"),
        ({"request": {"url": "http://a/"}, "response": {"status": 200}}, "method"),
        (
            {
                "request": {"method": "GET", "url": "http://a/", "headers": [{"value": "x"}]},
                "response": {"status": 200},
            },
            "headers[0]",
        ),
    ],
)
def test_unusable_entries_raise_value_error(entry: dict[str, Any], message: str) -> None:
    """A malformed entry gives a ValueError naming the bad field."""
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        from_har_entry(entry)


def test_chrome_http2_pseudo_headers_are_skipped() -> None:
    """Browser HTTP/2 pseudo-headers do not become request headers; h2 maps to version 2."""
    doc = json.loads((DATA / "chrome.har").read_text("utf-8"))
    h2 = next(e for e in doc["log"]["entries"] if e["request"]["httpVersion"] == "h2")
    ex = from_har_entry(h2)
    assert ex.request.http_version == "2"
    assert all(not k.startswith(":") for k, _ in ex.request.headers)
    assert ex.request.host == "shop.example.test"


def test_foreign_fixtures_are_valid_har() -> None:
    """The hand-written Chrome fixture is valid HAR 1.2 (the mitmproxy one has null timings,
    as mitmproxy writes them, and is read anyway)."""
    jsonschema.validate(json.loads((DATA / "chrome.har").read_text("utf-8")), SCHEMA)
    mitm = json.loads((DATA / "mitmproxy.har").read_text("utf-8"))
    assert all(from_har_entry(e).response.status > 0 for e in mitm["log"]["entries"])
