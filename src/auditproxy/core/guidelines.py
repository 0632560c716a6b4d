"""Turn the profile tables (plain dicts, as read from YAML) into a Profile.

Every row is validated once, here: unknown keys, unknown checks, parameters
that do not bind to the check's signature, unknown severities and overrides
of rule ids the profile does not have all raise ``ConfigError(file, key,
"got X, expected Y")``. Standard library only; the YAML is read elsewhere.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from typing import Any, get_args

from auditproxy.core.checks import CHECKS
from auditproxy.core.engine import compile_profile
from auditproxy.core.errors import ConfigError
from auditproxy.core.findings import Severity
from auditproxy.core.model import Body, Exchange, RequestHead, ResponseHead
from auditproxy.core.profile import HandlingRow, Profile, RetryWhen, Rule

SEVERITIES = ("must", "should", "may")
ORIGINS = ("upstream", "proxy")
ADVICES = ("never", "must", "may", "conditional")
RETRY_WHEN: tuple[RetryWhen, ...] = get_args(RetryWhen)
_RULE_KEYS = {
    "id", "source", "severity", "enabled", "check", "params", "applies", "message",
    "profile_version", "examples", "description", "header",
}  # fmt: skip
_OVERRIDE_KEYS = {"severity", "enabled", "params"}
_HANDLING_KEYS = {
    "status", "class", "sv", "en", "advice", "condition", "retry_when", "unused", "origin", "note",
}  # fmt: skip
_MATRIX_ROW_KEYS = {"status", "reason", "cells", "evidence", "confidence"}


def _fail(source: str, where: str, got: Any, expected: str) -> ConfigError:
    return ConfigError(source, where, f"got {_show(got)}, expected {expected}")


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _mapping(value: Any, source: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(source, where, value, "a mapping")
    return value


def _list(value: Any, source: str, where: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise _fail(source, where, value, "a list")
    return value


def _str(value: Any, source: str, where: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise _fail(source, where, value, "a non-empty string" if not allow_empty else "a string")
    return value


def _bool(value: Any, source: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(source, where, value, "true or false")
    return value


def _unknown_keys(row: Mapping[str, Any], allowed: set[str], source: str, where: str) -> None:
    for key in row:
        if key not in allowed:
            raise _fail(source, f"{where}.{key}", key, "one of " + ", ".join(sorted(allowed)))


# --- matrix ----------------------------------------------------------------------


def parse_matrix(doc: Any, source: str) -> tuple[tuple[str, ...], dict[int, frozenset[str]]]:
    """The ARP.02 matrix: (column methods, status -> methods marked X)."""
    doc = _mapping(doc, source, "matrix")
    columns = tuple(
        _str(m, source, "columns") for m in _list(doc.get("columns"), source, "columns")
    )
    matrix: dict[int, frozenset[str]] = {}
    for i, row in enumerate(_list(doc.get("rows"), source, "rows")):
        row = _mapping(row, source, f"rows[{i}]")
        status = row.get("status")
        where = f"rows.{status}"
        _unknown_keys(row, _MATRIX_ROW_KEYS, source, where)
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise _fail(source, f"rows[{i}].status", status, "a status code 100-599")
        if status in matrix:
            raise _fail(source, f"{where}.status", status, "each status once")
        cells = _str(row.get("cells"), source, f"{where}.cells").split()
        if len(cells) != len(columns) or any(c not in ("X", "-") for c in cells):
            raise _fail(
                source, f"{where}.cells", row.get("cells"),
                f"{len(columns)} cells of X or - (columns {' '.join(columns)})",
            )  # fmt: skip
        matrix[status] = frozenset(m for m, c in zip(columns, cells, strict=True) if c == "X")
    return columns, matrix


# --- handling table ----------------------------------------------------------------


def parse_handling(doc: Any, source: str) -> tuple[dict[int, HandlingRow], dict[int, HandlingRow]]:
    """The handling table: (status -> row, class digit -> class row such as 2xx)."""
    doc = _mapping(doc, source, "handling")
    rows: dict[int, HandlingRow] = {}
    classes: dict[int, HandlingRow] = {}
    for i, row in enumerate(_list(doc.get("rows"), source, "rows")):
        row = _mapping(row, source, f"rows[{i}]")
        raw = row.get("status")
        where = f"rows.{raw}"
        _unknown_keys(row, _HANDLING_KEYS, source, where)
        key = str(raw)
        if len(key) == 3 and key[0] in "12345" and key[1:] == "xx":
            target, index = classes, int(key[0])
        elif isinstance(raw, int) and not isinstance(raw, bool) and 100 <= raw <= 599:
            target, index = rows, raw
        else:
            raise _fail(
                source, f"rows[{i}].status", raw, "a status code 100-599 or a class 1xx-5xx"
            )
        if index in target:
            raise _fail(source, f"{where}.status", raw, "each status once")
        advice = row.get("advice")
        if advice not in ADVICES:
            raise _fail(source, f"{where}.advice", advice, "one of " + ", ".join(ADVICES))
        condition = row.get("condition")
        if condition is not None:
            condition = _str(condition, source, f"{where}.condition")
        retry_when = _retry_when(row, advice, source, where)
        target[index] = HandlingRow(
            status=key,
            klass=_str(row.get("class"), source, f"{where}.class"),
            text_sv=_str(row.get("sv", ""), source, f"{where}.sv", allow_empty=True),
            text_en=_str(row.get("en"), source, f"{where}.en"),
            advice=advice,
            condition=condition,
            retry_when=retry_when,
            unused=_bool(row.get("unused", False), source, f"{where}.unused"),
            origin=_str(row.get("origin", "seed"), source, f"{where}.origin"),
        )
    return rows, classes


def _retry_when(row: Mapping[str, Any], advice: str, source: str, where: str) -> RetryWhen | None:
    """A conditional row's machine-readable retry condition (absent: not retried)."""
    value = row.get("retry_when")
    if value is None:
        return None
    for known in RETRY_WHEN:
        if value == known:
            if advice != "conditional":
                raise _fail(
                    source, f"{where}.retry_when", value,
                    f"no retry_when on a {advice} row (conditional rows only)",
                )  # fmt: skip
            return known
    raise _fail(source, f"{where}.retry_when", value, "one of " + ", ".join(RETRY_WHEN))


# --- rules -------------------------------------------------------------------------

_TYPE_CHECKS: dict[str, tuple[str, Any]] = {
    "str": ("a string", lambda v: isinstance(v, str)),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "Sequence[str]": (
        "a list of strings",
        lambda v: isinstance(v, list | tuple) and all(isinstance(x, str) for x in v),
    ),
    "Sequence[int]": (
        "a list of integers",
        lambda v: (
            isinstance(v, list | tuple)
            and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        ),
    ),
    "Mapping[str, str] | None": (
        "a mapping of strings",
        lambda v: (
            v is None
            or (isinstance(v, Mapping) and all(isinstance(x, str) for x in (*v, *v.values())))
        ),
    ),
}


def check_params(check: str, params: Mapping[str, Any], source: str, where: str) -> None:
    """Bind ``params`` to the check's keyword parameters and check simple types."""
    sig = inspect.signature(CHECKS[check].fn)
    expected = (
        ", ".join(f"{p.name}: {p.annotation}" for p in list(sig.parameters.values())[1:])
        or "no parameters"
    )
    try:
        sig.bind(None, **params)
    except TypeError as exc:
        what = f"parameters of {check}({expected}) ({exc})"
        raise _fail(source, where, dict(params), what) from None
    for name, value in params.items():
        annotation = sig.parameters[name].annotation
        rule = _TYPE_CHECKS.get(str(annotation))
        if rule is not None and not rule[1](value):
            raise _fail(source, f"{where}.{name}", value, rule[0])


def _statuses(value: Any, source: str, where: str) -> frozenset[int]:
    out: set[int] = set()
    for item in _list(value, source, where):
        text = str(item)
        if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
            base = int(text[0]) * 100
            out.update(range(base, base + 100))
        elif isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599:
            out.add(item)
        else:
            raise _fail(source, where, item, "status codes 100-599 or classes like 4xx")
    return frozenset(out)


def _severity(value: Any, source: str, where: str) -> Severity:
    if value not in SEVERITIES:
        raise _fail(source, where, value, "one of " + ", ".join(SEVERITIES))
    return Severity(value)


def parse_rule(row: Any, index: int, source: str, default_version: str) -> Rule:
    row = _mapping(row, source, f"rules[{index}]")
    rid = _str(row.get("id"), source, f"rules[{index}].id")
    where = f"rules.{rid}"
    _unknown_keys(row, _RULE_KEYS, source, where)
    check = row.get("check")
    if check not in CHECKS:
        raise _fail(source, f"{where}.check", check, "one of " + ", ".join(sorted(CHECKS)))
    spec = CHECKS[check]
    params = dict(_mapping(row.get("params") or {}, source, f"{where}.params"))
    check_params(check, params, source, f"{where}.params")
    applies = _mapping(row.get("applies") or {}, source, f"{where}.applies")
    _unknown_keys(applies, {"status", "methods", "origin"}, source, f"{where}.applies")
    statuses = (
        _statuses(applies["status"], source, f"{where}.applies.status")
        if "status" in applies
        else None
    )
    methods = None
    if "methods" in applies:
        items = _list(applies["methods"], source, f"{where}.applies.methods")
        methods = frozenset(_str(m, source, f"{where}.applies.methods") for m in items)
    origins = None
    if "origin" in applies:
        items = _list(applies["origin"], source, f"{where}.applies.origin")
        for o in items:
            if o not in ORIGINS:
                raise _fail(source, f"{where}.applies.origin", o, "upstream or proxy")
        origins = frozenset(items)
    header = row.get("header") or params.get("header") or spec.header
    examples: dict[str, tuple[Mapping[str, Any], ...]] = {}
    for kind, cases in _mapping(row.get("examples") or {}, source, f"{where}.examples").items():
        if kind not in ("pass", "fail"):
            raise _fail(source, f"{where}.examples.{kind}", kind, "pass or fail")
        items = _list(cases, source, f"{where}.examples.{kind}")
        examples[kind] = tuple(
            _mapping(c, source, f"{where}.examples.{kind}[{i}]") for i, c in enumerate(items)
        )
    return Rule(
        id=rid,
        check=check,
        severity=_severity(row.get("severity"), source, f"{where}.severity"),
        message=_str(row.get("message"), source, f"{where}.message"),
        source=_str(row.get("source", ""), source, f"{where}.source", allow_empty=True),
        enabled=_bool(row.get("enabled", True), source, f"{where}.enabled"),
        params=params,
        category=spec.category,
        header=header if isinstance(header, str) else None,
        phase=spec.phase,
        statuses=statuses,
        methods=methods,
        origins=origins,
        profile_version=str(row.get("profile_version", default_version)),
        description=_str(
            row.get("description", ""), source, f"{where}.description", allow_empty=True
        ),
        examples=examples,
    )


def parse_rules(doc: Any, source: str, default_version: str) -> tuple[Rule, ...]:
    doc = _mapping(doc, source, "rules")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, row in enumerate(_list(doc.get("rules"), source, "rules")):
        rule = parse_rule(row, i, source, default_version)
        if rule.id in seen:
            raise _fail(source, f"rules.{rule.id}.id", rule.id, "each rule id once")
        seen.add(rule.id)
        rules.append(rule)
    return tuple(rules)


def apply_overrides(
    rules: tuple[Rule, ...], overrides: Mapping[str, Any] | None, source: str
) -> tuple[Rule, ...]:
    """Apply the config's ``rules:`` mapping ``{id: {severity, enabled, params}}``."""
    if not overrides:
        return rules
    overrides = _mapping(overrides, source, "rules")
    by_id = {r.id: r for r in rules}
    changed: dict[str, Rule] = {}
    for rid, change in overrides.items():
        where = f"rules.{rid}"
        if rid not in by_id:
            raise _fail(source, where, rid, "a rule id of the profile (see `auditproxy rules`)")
        change = _mapping(change, source, where)
        _unknown_keys(change, _OVERRIDE_KEYS, source, where)
        rule = by_id[rid]
        severity, enabled, params = rule.severity, rule.enabled, dict(rule.params)
        if "severity" in change:
            severity = _severity(change["severity"], source, f"{where}.severity")
        if "enabled" in change:
            enabled = _bool(change["enabled"], source, f"{where}.enabled")
        if "params" in change:
            params.update(_mapping(change["params"], source, f"{where}.params"))
            check_params(rule.check, params, source, f"{where}.params")
        header = rule.header
        if "params" in change and isinstance(params.get("header"), str):
            header = params["header"]
        changed[rid] = Rule(
            id=rule.id, check=rule.check, severity=severity, message=rule.message,
            source=rule.source, enabled=enabled, params=params, category=rule.category,
            header=header, phase=rule.phase, statuses=rule.statuses, methods=rule.methods,
            origins=rule.origins,
            profile_version=rule.profile_version, description=rule.description,
            examples=rule.examples,
        )  # fmt: skip
    return tuple(changed.get(r.id, r) for r in rules)


def build_profile(
    *,
    name: str,
    version: str,
    matrix: Any,
    handling: Any,
    rules: Any,
    sources: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
    override_source: str = "<config>",
    origin: str = "",
) -> Profile:
    """Validate the three tables and the overrides and build the Profile.

    ``sources`` names the file of each table (keys ``matrix``, ``handling``,
    ``rules``) for error messages."""
    columns, table = parse_matrix(matrix, sources["matrix"])
    rows, classes = parse_handling(handling, sources["handling"])
    parsed = parse_rules(rules, sources["rules"], version)
    parsed = apply_overrides(parsed, overrides, override_source)
    profile = Profile(
        name=name,
        version=version,
        matrix=table,
        matrix_methods=columns,
        handling=rows,
        handling_classes=classes,
        rules=parsed,
        source=origin,
    )
    compile_profile(profile)
    return profile


# --- examples -----------------------------------------------------------------------


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if not value:
        return ()
    if isinstance(value, Mapping):
        return tuple((str(k), str(v)) for k, v in value.items())
    return tuple((str(k), str(v)) for k, v in value)


def example_exchange(spec: Mapping[str, Any]) -> Exchange:
    """Build an Exchange from a rule example: ``method``, ``target``, ``status``,
    ``headers``, ``request_headers``, ``body`` and ``request_body`` (text, or any
    JSON value which is serialised), ``body_size`` (true size when the sample is
    truncated), ``route`` (the route label; default ``other``, so the URL rules
    judge the target's path), ``traceparent`` (what the proxy sent upstream), ``public``."""
    raw = _example_body(spec.get("body"))
    request_raw = _example_body(spec.get("request_body"))
    size = int(spec.get("body_size", len(raw)))
    return Exchange(
        request=RequestHead(
            method=str(spec.get("method", "GET")),
            target=str(spec.get("target", "/")),
            headers=_headers(spec.get("request_headers")),
        ),
        response=ResponseHead(
            status=int(spec.get("status", 200)), headers=_headers(spec.get("headers"))
        ),
        request_body=Body(size=len(request_raw), sample=request_raw),
        response_body=Body(size=size, sample=raw),
        route=str(spec.get("route", "other")),
        traceparent=str(spec.get("traceparent", "")),
        public=bool(spec.get("public", False)),
    )


def _example_body(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()
