"""Where a rule's source can be read: a documentation URL for a catalog ``source``.

``help_uri("RFC 9110 §15.5.6")`` is the RFC's section on rfc-editor.org; DIGG
rule ids lead to the REST API profile, the handling table to the guideline page it
was taken from. The first reference in the text that is known wins (a source such
as ``"DIGG ARP.01 vs RFC 9110 §5.6.7"`` names the guideline first). Pure.
"""

from __future__ import annotations

import re

RFC_BASE = "https://www.rfc-editor.org/rfc/rfc"
DIGG_PROFILE = "https://www.dataportal.se/rest-api-profil/om-rest-api-profilen"
HANDLING_TABLE = "https://sundsvall.atlassian.net/wiki/pages/viewpage.action?pageId=790003726"
IANA_STATUS = "https://www.iana.org/assignments/http-status-codes/http-status-codes.xhtml"
FETCH_CORS = "https://fetch.spec.whatwg.org/#cors-check"
TRACE_CONTEXT = "https://www.w3.org/TR/trace-context/"

_RFC = re.compile(r"RFC\s*(\d{3,5})(?:\s*§\s*([\d.]*\d))?")
_KNOWN = (
    (re.compile(r"\bDIGG\b|\b(?:ARP|FEL|AME|SPA|SAK)\.\d"), DIGG_PROFILE),
    (re.compile(r"handling (?:table|guideline)|Sundsvall", re.IGNORECASE), HANDLING_TABLE),
    (re.compile(r"\bIANA\b"), IANA_STATUS),
    (re.compile(r"WHATWG|Fetch", re.IGNORECASE), FETCH_CORS),
    (re.compile(r"Trace Context|traceparent", re.IGNORECASE), TRACE_CONTEXT),
)


def help_uri(source: str) -> str:
    """A URL documenting ``source``; RFC 9110 when nothing in it is known."""
    hits: list[tuple[int, str]] = []
    m = _RFC.search(source)
    if m:
        section = f"#section-{m.group(2)}" if m.group(2) else ""
        hits.append((m.start(), f"{RFC_BASE}{m.group(1)}{section}"))
    for pattern, uri in _KNOWN:
        k = pattern.search(source)
        if k:
            hits.append((k.start(), uri))
    return min(hits)[1] if hits else f"{RFC_BASE}9110"
