"""Response rewrite rules (SPEC §11): compiled once from the config, applied to a head.

``compile_rewrites`` turns the config's raw ``rewrite:`` mappings into
``RewriteRule`` records, checked against the loaded profile; every error names
the file, the rule's index and name, the key and the value. ``apply_rewrites`` is
a function of values: the response head the client would get, the request, the
route label, the upstream's findings and (when the proxy held all of it) the body
-> the head the client gets and which rules applied. What each action does is in
``core/rewrite_actions.py``.

The rules run in order; each sees the head the rules before it left (so
``match.status`` is the current status), while ``match.finding`` is always about
the upstream's own response. A rule is listed in ``RewriteResult.applied`` only
when its action would change the head: under the action's name, as ``dry_run``
(``dry_run: true``: evaluated, not applied) or as ``skipped`` (it needs the body
and the proxy did not hold the whole body).

Framing: rewrites never change body bytes and no action may set or remove the
framing or hop-by-hop fields. Once the rules ran, the framing fields follow the
final status: none on 204/304 (whatever the upstream sent), ``Content-Length: 0``
when the upstream's status had no content, else the upstream's own, so the
``Content-Length`` always tells the truth about the body the client gets.

The caller must send no body when ``drop_body`` is set (discarding what the
upstream sends), else the upstream's body unchanged (none for HEAD); and must
send the result's header list as it is: a field a rule set is kept even where
the proxy would drop it (e.g. ``Server``), one a rule removed stays away.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from auditproxy.core.errors import ConfigError
from auditproxy.core.findings import Finding
from auditproxy.core.forwarding import HOP_BY_HOP
from auditproxy.core.httpsyntax import is_uri_reference
from auditproxy.core.model import Headers, RequestHead, ResponseHead
from auditproxy.core.profile import Profile
from auditproxy.core.rewrite_actions import (
    MAX_HEADER_VALUE,
    Action,
    AddHeaderIfMissing,
    CorsOrigin,
    LocationFromBody,
    MapStatus,
    RemoveHeader,
    SetHeader,
    with_headers,
    without,
)
from auditproxy.core.routes import prefix_matches, remove_dot_segments, template_pattern

MAX_RULE_NAME = 100
NO_CONTENT = frozenset({204, 304})  # statuses that never carry content
BODY_FRAMING = frozenset({"content-length", "transfer-encoding"})
PROTECTED = HOP_BY_HOP | {"content-length"}  # framing: header actions may not touch them

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2
_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")  # visible ASCII, inner spaces
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[A-Za-z0-9.\-\[\]:]+")  # scheme://host[:port]
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


# ---------------------------------------------------------------- rules and applying


@dataclass(frozen=True, slots=True, kw_only=True)
class RewriteMatch:
    """All given keys must hold; ``None``/empty = any."""

    routes: tuple[str, ...] = ()  # prefixes, or templates (with {...}) as in routes:
    methods: frozenset[str] | None = None
    status: frozenset[int] | None = None
    finding: frozenset[str] | None = None
    _prefixes: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _patterns: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        prefixes = tuple(r for r in self.routes if "{" not in r)
        patterns = tuple(template_pattern(r) for r in self.routes if "{" in r)
        object.__setattr__(self, "_prefixes", prefixes)
        object.__setattr__(self, "_patterns", patterns)

    def route_matches(self, path: str, route: str) -> bool:
        """A prefix matches the path as ``routes:`` prefixes do; a template matches
        the path (one segment per placeholder) or equals the route label. Dot-segments
        are resolved first, so ``/orders/../admin`` is not under ``/orders``."""
        if not self.routes or route in self.routes:
            return True
        path = remove_dot_segments(path)  # as the route labeler sees it
        return any(prefix_matches(p, path) for p in self._prefixes) or any(
            p.fullmatch(path) for p in self._patterns
        )

    def matches(
        self, status: int, request: RequestHead, route: str, finding_ids: frozenset[str]
    ) -> bool:
        return (
            (self.status is None or status in self.status)
            and (self.methods is None or request.method in self.methods)
            and (self.finding is None or not self.finding.isdisjoint(finding_ids))
            and self.route_matches(request.path, route)
        )

    def describe(self) -> dict[str, Sequence[object]]:
        """The given keys with their values (sorted), as in the config."""
        out: dict[str, Sequence[object]] = {}
        if self.routes:
            out["routes"] = list(self.routes)
        if self.methods is not None:
            out["methods"] = sorted(self.methods)
        if self.status is not None:
            out["status"] = sorted(self.status)
        if self.finding is not None:
            out["finding"] = sorted(self.finding)
        return out


EVERYTHING = RewriteMatch()


@dataclass(frozen=True, slots=True, kw_only=True)
class RewriteRule:
    name: str
    action: Action
    match: RewriteMatch = EVERYTHING
    dry_run: bool = False

    @property
    def needs_body(self) -> bool:
        return self.action.needs_body

    def describe(self) -> dict[str, object]:
        """The rule as data: name, match, the action and its arguments, dry_run."""
        return {"name": self.name, "match": self.match.describe(),
                self.action.action: self.action.describe(), "dry_run": self.dry_run}  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class RewriteResult:
    """``head``: what the client gets. ``applied``: ``(rule name, outcome)`` in rule
    order, outcome the action's name, ``dry_run`` or ``skipped``. ``drop_body``: the
    status became one without content (204/304), so the caller sends no body."""

    head: ResponseHead
    applied: tuple[tuple[str, str], ...] = ()
    drop_body: bool = False

    @property
    def changed(self) -> bool:
        return any(outcome not in ("dry_run", "skipped") for _, outcome in self.applied)


def apply_rewrites(
    rules: Sequence[RewriteRule],
    head: ResponseHead,
    request: RequestHead,
    route: str,
    findings: tuple[Finding, ...],
    body: bytes | None,
) -> RewriteResult:
    """Apply ``rules`` in order to ``head`` (the head the client would get).

    ``findings`` are the upstream's, from its original response; ``body`` is the
    whole response body, ``b""`` when there is none (HEAD, 204, 304), ``None`` when
    the proxy did not hold all of it (rules that need it are then ``skipped``)."""
    if not rules:
        return RewriteResult(head=_framed(head, head) if head.status in NO_CONTENT else head)
    finding_ids = frozenset(f.rule for f in findings)
    applied: list[tuple[str, str]] = []
    current = head
    for rule in rules:
        if not rule.match.matches(current.status, request, route, finding_ids):
            continue
        new = rule.action.apply(current, request, body)
        if new is None:
            applied.append((rule.name, "skipped"))
        elif new is not current and new != current:
            applied.append((rule.name, "dry_run" if rule.dry_run else rule.action.action))
            if not rule.dry_run:
                current = new
    drop = current.status in NO_CONTENT and head.status not in NO_CONTENT
    return RewriteResult(head=_framed(head, current), applied=tuple(applied), drop_body=drop)


def _framed(upstream: ResponseHead, head: ResponseHead) -> ResponseHead:
    """``head`` with the framing fields its final status calls for: none on 204/304
    (whatever the upstream sent), ``Content-Length: 0`` when the upstream's status had
    no content (so the client gets an empty body), else the upstream's own fields
    (the body is the upstream's, unchanged)."""
    if head.status in NO_CONTENT:
        want: Headers = ()
    elif upstream.status in NO_CONTENT:
        want = (("Content-Length", "0"),)
    else:
        want = tuple(h for h in upstream.headers if h[0].lower() in BODY_FRAMING)
    if tuple(h for h in head.headers if h[0].lower() in BODY_FRAMING) == want:
        return head
    return with_headers(head, (*without(head.headers, BODY_FRAMING), *want))


# ---------------------------------------------------------------- compiling the config


class _Invalid(Exception):
    """A bad value inside one rule: ``key`` relative to the rule, ``what`` the message."""

    def __init__(self, key: str, what: str) -> None:
        super().__init__(key, what)
        self.key = key
        self.what = what


def _strings(value: object, key: str, expected: str) -> tuple[str, ...]:
    """A string or a non-empty list of strings."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise _Invalid(key, f"got {value!r}, expected {expected}")
    return tuple(v.strip() for v in items)


def _header_name(name: object, key: str) -> str:
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise _Invalid(key, f"got {name!r}, expected a header name (an RFC 9110 token)")
    if name.lower() in PROTECTED:
        raise _Invalid(
            key, f"got {name!r}: framing and hop-by-hop fields are the proxy's, not a rule's"
        )
    return name


def _header_value(value: object, key: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _Invalid(key, f"got {value!r}, expected a header value (text)")
    if not value.isascii():
        raise _Invalid(key, f"got {value!r}, expected ASCII only (added values are ASCII)")
    if not _VALUE.fullmatch(value) or len(value) > MAX_HEADER_VALUE:
        raise _Invalid(
            key, f"got {value!r}, expected visible ASCII, no control characters, "
            f"1-{MAX_HEADER_VALUE} characters"
        )  # fmt: skip
    return value


def _header_fields(value: object, key: str) -> Headers:
    if not isinstance(value, Mapping) or not value:
        raise _Invalid(key, f"got {value!r}, expected a mapping of header name -> value")
    return tuple(
        (_header_name(n, f"{key}.{n}"), _header_value(v, f"{key}.{n}")) for n, v in value.items()
    )


def _remove_header(value: object, key: str) -> RemoveHeader:
    names = _strings(value, key, "a header name or a list of them")
    return RemoveHeader(tuple(_header_name(n, key) for n in names))


def _keys(value: object, key: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> None:
    if not isinstance(value, Mapping):
        raise _Invalid(key, f"got {value!r}, expected a mapping with {', '.join(allowed)}")
    for k in value:
        if k not in allowed:
            raise _Invalid(f"{key}.{k}", f"unknown key, expected one of {', '.join(allowed)}")
    for k in required:
        if k not in value:
            raise _Invalid(f"{key}.{k}", "missing")


def _map_status(value: object, key: str) -> MapStatus:
    _keys(value, key, ("to", "when_empty"), ("to",))
    assert isinstance(value, Mapping)
    to, when_empty = value["to"], value.get("when_empty", False)
    if isinstance(to, bool) or not isinstance(to, int) or not 200 <= to <= 599 or to == 205:
        raise _Invalid(f"{key}.to", f"got {to!r}, expected a final status code 200-599 (not 205)")
    if not isinstance(when_empty, bool):
        raise _Invalid(f"{key}.when_empty", f"got {when_empty!r}, expected true or false")
    return MapStatus(to, when_empty)


def _cors_origin(value: object, key: str) -> CorsOrigin:
    _keys(value, key, ("allow",), ("allow",))
    assert isinstance(value, Mapping)
    origins = _strings(value["allow"], f"{key}.allow", "a list of origins")
    for o in origins:
        if not o.isascii() or not _ORIGIN.fullmatch(o):
            raise _Invalid(
                f"{key}.allow", f"got {o!r}, expected an origin like https://app.example "
                "(scheme://host[:port], no path; the wildcard is what this rule replaces)"
            )  # fmt: skip
    return CorsOrigin(origins)


def _location_from_body(value: object, key: str) -> LocationFromBody:
    _keys(value, key, ("field", "template"), ("field", "template"))
    assert isinstance(value, Mapping)
    name, template = value["field"], value["template"]
    if not isinstance(name, str) or not name or "{" in name or "}" in name:
        raise _Invalid(f"{key}.field", f"got {name!r}, expected a top-level JSON member name")
    expected = f"expected a URI template using {{{name}}} only, like /orders/{{{name}}}"
    if not isinstance(template, str):
        raise _Invalid(f"{key}.template", f"got {template!r}, {expected}")
    names = _PLACEHOLDER.findall(template)
    bare = _PLACEHOLDER.sub("x", template)
    if not names or any(n != name for n in names) or "{" in bare or "}" in bare:
        raise _Invalid(f"{key}.template", f"got {template!r}, {expected}")
    if not bare.isascii() or not is_uri_reference(bare) or len(bare) > MAX_HEADER_VALUE:
        raise _Invalid(f"{key}.template", f"got {template!r}, expected an ASCII URI reference")
    return LocationFromBody(name, template)


_ACTIONS: dict[str, Callable[[object, str], Action]] = {
    "set_header": lambda v, k: SetHeader(_header_fields(v, k)),
    "add_header_if_missing": lambda v, k: AddHeaderIfMissing(_header_fields(v, k)),
    "remove_header": _remove_header,
    "map_status": _map_status,
    "cors_origin": _cors_origin,
    "location_from_body": _location_from_body,
}
_RULE_KEYS = ("name", "match", "dry_run")
_MATCH_KEYS = ("routes", "methods", "status", "finding")


def _statuses(value: object, key: str) -> frozenset[int]:
    items = [value] if isinstance(value, int) else value
    if (
        not isinstance(items, list)
        or not items
        or not all(
            isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in items
        )
    ):
        raise _Invalid(key, f"got {value!r}, expected a status code or a list of them (100-599)")
    return frozenset(items)


def _findings(value: object, key: str, profile: Profile) -> frozenset[str]:
    ids = _strings(value, key, "a rule id or a list of them")
    known = [r.id for r in profile.rules]
    for rid in ids:
        if profile.rule(rid) is None:
            near = difflib.get_close_matches(rid, known, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise _Invalid(key, f"got {rid!r}, expected a rule id of profile {profile.name}{hint}")
    return frozenset(ids)


def _match(value: object, profile: Profile) -> RewriteMatch:
    if value is None:
        return EVERYTHING
    _keys(value, "match", _MATCH_KEYS, ())
    assert isinstance(value, Mapping)
    routes: tuple[str, ...] = ()
    if "routes" in value:
        routes = _strings(value["routes"], "match.routes", "a list of route prefixes or templates")
        for r in routes:
            if not r.startswith("/") or not r.isascii():
                raise _Invalid("match.routes", f"got {r!r}, expected a path starting with /")
    methods = None
    if "methods" in value:
        methods = _strings(value["methods"], "match.methods", "a list of methods")
        for m in methods:
            if not _TOKEN.fullmatch(m):
                raise _Invalid("match.methods", f"got {m!r}, expected a method name")
    return RewriteMatch(
        routes=routes,
        methods=frozenset(m.upper() for m in methods) if methods is not None else None,
        status=_statuses(value["status"], "match.status") if "status" in value else None,
        finding=_findings(value["finding"], "match.finding", profile)
        if "finding" in value
        else None,
    )


def _rule_name(raw: Mapping[str, Any], index: int, source: str) -> str:
    name = raw.get("name")
    where = f"rewrite[{index}].name"
    if name is None:
        raise ConfigError(source, where, "missing, expected the rule's name (its metric label)")
    if (
        not isinstance(name, str)
        or not name.strip()
        or not name.isascii()
        or not name.isprintable()
        or len(name) > MAX_RULE_NAME
    ):
        raise ConfigError(
            source, where, f"got {name!r}, expected printable ASCII text of 1-{MAX_RULE_NAME} "
            "characters"
        )  # fmt: skip
    return name.strip()


def _compile_rule(raw: Mapping[str, Any], name: str, profile: Profile) -> RewriteRule:
    actions = [k for k in raw if k not in _RULE_KEYS]
    for k in actions:
        if k not in _ACTIONS:
            raise _Invalid(
                str(k), f"unknown action, expected one of {', '.join(_ACTIONS)} "
                f"(or {', '.join(_RULE_KEYS)})"
            )  # fmt: skip
    if not actions:
        raise _Invalid("-", f"no action, expected exactly one of {', '.join(_ACTIONS)}")
    if len(actions) > 1:
        raise _Invalid(actions[1], f"second action ({', '.join(actions)}), expected exactly one")
    dry_run = raw.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise _Invalid("dry_run", f"got {dry_run!r}, expected true or false")
    kind = actions[0]
    return RewriteRule(
        name=name,
        action=_ACTIONS[kind](raw[kind], kind),
        match=_match(raw.get("match"), profile),
        dry_run=dry_run,
    )


def compile_rewrites(
    rules: Sequence[Mapping[str, Any]], profile: Profile, *, source: str
) -> tuple[RewriteRule, ...]:
    """The config's ``rewrite:`` list as rules, checked against ``profile``.

    Raises ConfigError naming ``source``, the rule (``rewrite[2] (no-store)``), the
    key and the value."""
    out: list[RewriteRule] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(rules):
        if not isinstance(raw, Mapping):
            raise ConfigError(source, f"rewrite[{index}]", f"got {raw!r}, expected a mapping")
        name = _rule_name(raw, index, source)
        where = f"rewrite[{index}] ({name})"
        if name in seen:
            raise ConfigError(
                source, f"{where}.name", f"got {name!r} again, already the name of "
                f"rewrite[{seen[name]}]; names label the metric, so they must differ"
            )  # fmt: skip
        seen[name] = index
        try:
            out.append(_compile_rule(raw, name, profile))
        except _Invalid as exc:
            key = where if exc.key == "-" else f"{where}.{exc.key}"
            raise ConfigError(source, key, exc.what) from None
    return tuple(out)
