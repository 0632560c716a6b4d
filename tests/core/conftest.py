"""Fixtures for the core tests: the built-in profile and an exchange factory."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditproxy.core.engine import Profile
from auditproxy.core.model import Body, Exchange, RequestHead, ResponseHead
from auditproxy.profiles import load_profile

IMF_DATE = "Sun, 06 Nov 1994 08:49:37 GMT"
BUILTIN = Path(__file__).resolve().parents[2] / "src" / "auditproxy" / "profiles" / "digg"
# The trace context a conforming API answers with (DIGG SPA.04).
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(scope="session")
def digg() -> Profile:
    """The built-in digg profile as shipped."""
    return load_profile("digg")


@pytest.fixture(scope="session")
def digg_all(digg: Profile) -> Profile:
    """The digg profile with every rule enabled (roadmap rules included)."""
    rules = tuple(dataclasses.replace(r, enabled=True) for r in digg.rules)
    return dataclasses.replace(digg, rules=rules)


def make_exchange(
    method: str = "GET",
    status: int = 200,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    body_size: int | None = None,
    request_headers: dict[str, str] | None = None,
    target: str = "/v1/orders/1",
    traced: bool = True,
    **extra: Any,
) -> Exchange:
    """An exchange with the given request method, response status, headers and body.

    The target is under a versioned API root (VER.05) and, unless ``traced`` is
    false, the response carries a ``traceparent`` (SPA.04), as a conforming API's
    would; tests of other rules then see only the findings they are about."""
    response_headers = dict(headers or {})
    if traced and not any(k.lower() == "traceparent" for k in response_headers):
        response_headers["traceparent"] = TRACEPARENT
    return Exchange(
        request=RequestHead(
            method=method, target=target, headers=tuple((request_headers or {}).items())
        ),
        response=ResponseHead(status=status, headers=tuple(response_headers.items())),
        response_body=Body(size=len(body) if body_size is None else body_size, sample=body),
        **extra,
    )


def user_profile(tmp_path: Path, mutate: Any = None, target: str = "rules") -> Path:
    """A copy of the built-in profile folder, with one table changed by ``mutate``."""
    folder = tmp_path / "myprofile"
    folder.mkdir()
    for name in ("matrix", "handling", "rules"):
        doc = yaml.safe_load((BUILTIN / f"{name}.yaml").read_text(encoding="utf-8"))
        if name == target and mutate is not None:
            mutate(doc)
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True),
                                              encoding="utf-8")  # fmt: skip
    return folder
