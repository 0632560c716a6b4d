"""The ``X-Audit-Findings`` response header (SPEC §11, ``annotate:``).

``annotate: true`` adds it to every response with findings, ``annotate: request``
only to responses for requests carrying ``X-Audit-Debug: 1``. The value lists
the rule ids in order, each once, ASCII only, at most ``ANNOTATION_MAX`` bytes,
then ``+N more``: a client library that chokes on long or non-ASCII header
values (as Node did on Prism's ``sl-violations``) never sees one from us.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from auditproxy.core.findings import Finding

ANNOTATION_HEADER = "X-Audit-Findings"
ANNOTATION_MAX = 512  # bytes of the header value
DEBUG_HEADER = "X-Audit-Debug"

AnnotateMode = bool | Literal["request"]


def _ascii_id(rule: str) -> str:
    """``rule`` with anything but visible ASCII (and the list separator) as ``?``."""
    if rule.isascii() and rule.isprintable() and " " not in rule and "," not in rule:
        return rule
    return "".join(c if "!" <= c <= "~" and c != "," else "?" for c in rule)


def annotation(findings: Iterable[Finding]) -> str:
    """The ``X-Audit-Findings`` value: distinct rule ids joined by ``", "``, cut to at
    most ``ANNOTATION_MAX`` bytes with ``+N more`` for the ids left out; ``""`` when
    there are no findings."""
    ids = list(dict.fromkeys(_ascii_id(f.rule) for f in findings))
    value = ""
    for i, rule in enumerate(ids):
        candidate = f"{value}, {rule}" if value else rule
        rest = len(ids) - i - 1
        suffix = f", +{rest} more" if rest else ""
        if len(candidate) + len(suffix) > ANNOTATION_MAX:
            return f"{value}, +{len(ids) - i} more" if value else f"+{len(ids)} more"
        value = candidate
    return value


def annotate_wanted(setting: AnnotateMode, request_headers: Iterable[tuple[str, str]]) -> bool:
    """Whether this response gets ``X-Audit-Findings``: always for ``True``, never for
    ``False``, and for ``"request"`` only when the request carries ``X-Audit-Debug: 1``."""
    if setting is True or setting is False:
        return setting
    debug = DEBUG_HEADER.lower()
    return any(k.lower() == debug and v.strip() == "1" for k, v in request_headers)
