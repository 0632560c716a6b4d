"""The proxy's own answers as RFC 9457 problem+json: which problem for which
refusal or failure, and the exact head and body that go on the wire (so that
the recorded head is the head the client got, ``Date`` and ``Content-Length``
included)."""

from __future__ import annotations

import json
from dataclasses import dataclass

PROBLEM_TYPE = "urn:auditproxy:problem:"
# Answers after which the rest of the request cannot be read: close the connection.
CLOSING_STATUSES = frozenset({400, 408, 413, 414, 431})


@dataclass(frozen=True, slots=True)
class Problem:
    """One answer of the proxy's own. ``error`` is the upstream error kind when the
    answer stands for an upstream failure (502/504)."""

    status: int
    kind: str  # the problem type's suffix
    title: str
    detail: str
    error: str | None = None


def client_body_problem(kind: str, limit: int) -> Problem:
    """The answer when the client's own request body failed (``ClientBodyError``)."""
    if kind == "body_too_large":
        return Problem(
            413, "body-too-large", "Request body too large",
            f"the request body exceeds the proxy's limit of {limit} bytes",
        )  # fmt: skip
    if kind == "client_read_timeout":
        return Problem(
            408, "client-timeout", "Request body timeout",
            "the client paused longer than the proxy's client_read timeout",
        )  # fmt: skip
    return Problem(
        400, "client-disconnected", "Client disconnected",
        "the client closed the connection while sending the request body",
    )  # fmt: skip


def upstream_problem(kind: str, why: str | None = None) -> Problem:
    """The answer for an upstream failure of ``kind`` (SPEC §5). The client learns
    the kind, and for a timeout which limit passed; addresses and the upstream's
    own error text stay in the proxy's log."""
    if kind == "timeout":
        detail = "auditproxy got no timely response from the upstream"
        return Problem(504, "upstream-timeout", "Upstream timeout",
                       f"{detail}: {why}" if why else detail, error=kind)  # fmt: skip
    return Problem(
        502, f"upstream-{kind}", "Bad gateway",
        f"auditproxy could not get a response from the upstream ({kind})", error=kind,
    )  # fmt: skip


def problem_message(
    problem: Problem, *, request_id: str, date: str
) -> tuple[tuple[tuple[str, str], ...], bytes]:
    """The head fields and body of ``problem``, exactly as sent."""
    doc = {
        "type": PROBLEM_TYPE + problem.kind,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": f"urn:auditproxy:request:{request_id}",
        "source": "auditproxy",
    }
    body = json.dumps(doc).encode()
    headers = [
        ("Content-Type", "application/problem+json"),
        ("Content-Length", str(len(body))),
        ("Date", date),
        ("X-Request-Id", request_id),
        ("Server", "auditproxy"),
        ("Via", "1.1 auditproxy"),
    ]
    if problem.status in CLOSING_STATUSES:
        headers.append(("Connection", "close"))
    return tuple(headers), body
