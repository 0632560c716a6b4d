"""Redaction: secret headers, JSON fields at any depth, credential query parameters."""

from __future__ import annotations

import json

import pytest

from auditproxy.core.redact import REDACTED, Redaction

R = Redaction.build(headers=("X-Session",), json_fields=("pin",), query_params=("sig",))


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("Authorization", "Bearer abc", REDACTED),
        ("cookie", "a=1; b=2", REDACTED),
        ("Set-Cookie", "s=1; Path=/", REDACTED),
        ("Proxy-Authorization", "Basic xyz", REDACTED),
        ("X-API-Key", "k1", REDACTED),
        ("x-session", "configured", REDACTED),
        ("Content-Type", "application/json", "application/json"),
        ("Location", "/cb?token=t1&x=2", f"/cb?token={REDACTED}&x=2"),
    ],
)
def test_headers(name: str, value: str, expected: str) -> None:
    """Built-in and configured secret headers become REDACTED; URL headers lose query secrets."""
    assert R.header(name, value) == expected


def test_query_params_are_redacted_and_the_rest_kept_exactly() -> None:
    """Credential-like parameters are redacted in any case; other parameters stay byte-exact."""
    q = (
        "a=1&Access_Token=t%20x&api_key=k&apikey=k2&key=k3&token=t"
        "&client_secret=c&password=p&sig=s&b=%2F"
    )
    out = R.query(q)
    assert out.split("&")[0] == "a=1"
    assert out.split("&")[-1] == "b=%2F"
    for secret in ("t%20x", "=k&", "k2", "k3", "=t&", "=c&", "=p&", "=s&"):
        assert secret not in out + "&"
    assert out.count(REDACTED) == 8


def test_json_fields_at_any_depth() -> None:
    """Secret members are redacted in nested objects and arrays; other members are untouched."""
    body = {"user": {"name": "a", "Password": "p1", "tokens": [{"token": "t1"}, {"pin": 1234}]},
            "client_secret": {"nested": "c1"}, "id": 7}  # fmt: skip
    out = R.body_text(json.dumps(body), mime="application/json", complete=True)
    assert out is not None
    parsed = json.loads(out)
    assert parsed["user"]["Password"] == REDACTED
    assert parsed["user"]["tokens"] == [{"token": REDACTED}, {"pin": REDACTED}]
    assert parsed["client_secret"] == REDACTED
    assert parsed["id"] == 7
    assert parsed["user"]["name"] == "a"


def test_json_without_secrets_keeps_exact_text() -> None:
    """A JSON body with nothing secret is kept byte for byte (audits see the original)."""
    text = '{ "id" : 1,  "items": [1,2] }'
    assert R.body_text(text, mime="application/json", complete=True) == text


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ('{"user": "a", "password": "hunt', False),  # truncated, names a secret
        ('{"user": "a", "pa\\u0073sword": "x"', False),  # escape could hide a name
        ('{"user": "a", "items": [1, 2', True),  # truncated but nothing secret in it
    ],
)
def test_truncated_json_is_dropped_when_it_could_leak(text: str, kept: bool) -> None:
    """Unparseable JSON is kept only when it cannot contain a secret member."""
    out = R.body_text(text, mime="application/json", complete=False)
    assert (out == text) if kept else (out is None)


def test_form_bodies_are_redacted() -> None:
    """A urlencoded form body has its secret fields redacted like a query string."""
    out = R.body_text("user=a&password=p1&pin=9", mime="application/x-www-form-urlencoded",
                      complete=True)  # fmt: skip
    assert out == f"user=a&password={REDACTED}&pin={REDACTED}"


def test_configuration_cannot_unredact_builtins() -> None:
    """Configured lists extend the built-in ones."""
    r = Redaction.build(headers=(), json_fields=("x",), query_params=())
    assert r.header("Authorization", "a") == REDACTED
    assert "password" in r.json_fields
    assert "x" in r.json_fields
