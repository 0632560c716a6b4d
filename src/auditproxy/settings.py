"""Settings: defaults <- YAML file <- ``AUDITPROXY_*`` env <- command-line flags.

The settings are one typed model: frozen pydantic dataclasses whose fields are the
value types of ``settings_values`` (each with its parser, JSON Schema and printer).
It is validated once; code further in trusts the record. Every error names the
source (file, env var or flags), the key path and the bad value; ``dump_yaml``
prints the effective configuration back (``auditproxy check-config``) and
``json_schema`` describes the file to editors (``auditproxy config-schema``).

Env vars map to scalar keys by path: ``timeouts.connect`` <- ``AUDITPROXY_TIMEOUTS_CONNECT``,
``record.dir`` <- ``AUDITPROXY_RECORD_DIR``. Lists from env are comma separated.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass, is_pydantic_dataclass
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, SkipJsonSchema
from pydantic_core import SchemaError, SchemaSerializer, core_schema, to_jsonable_python

from auditproxy.core.errors import ConfigError
from auditproxy.core.guidelines import SEVERITIES
from auditproxy.core.retry import IDEMPOTENT_METHODS
from auditproxy.settings_values import (
    Address,
    Annotate,
    Bool,
    Duration,
    Methods,
    PositiveDuration,
    Prefix,
    Size,
    StatusList,
    StrList,
    Text,
    Url,
    Value,
    choice,
    integer,
    number,
    parse_rewrite,
    parse_rules,
)
from auditproxy.settings_values import HostPort as HostPort
from auditproxy.settings_values import format_duration as format_duration
from auditproxy.settings_values import format_size as format_size
from auditproxy.settings_values import parse_duration as parse_duration
from auditproxy.settings_values import parse_size as parse_size

# Unknown keys are errors, not ignored (SPEC §4).
_MODEL = ConfigDict(extra="forbid")


def _mapping(value: object) -> object:
    if isinstance(value, Mapping) or dataclasses.is_dataclass(value):
        return value
    raise ValueError("expected a mapping")


def _section_value(value: object) -> object:
    """A section given as ``null`` (``timeouts:`` with nothing under it) is all defaults."""
    return {} if value is None else _mapping(value)


def _optional_mapping(value: object) -> object:
    return None if value is None else _mapping(value)


def _route_list(value: object) -> object:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return value
    raise ValueError("expected a list of routes")


SECTION = BeforeValidator(_section_value)


def about(default: Any, description: str) -> Any:
    """A key's default and its description (the schema's, shown by editors)."""
    return Field(default=default, description=description)


# ---------------------------------------------------------------- the sections


@dataclass(frozen=True, slots=True, kw_only=True, config=_MODEL)
class RetryStatuses:
    """Which answers are retried; must/may absent: the profile's handling table says."""

    must: StatusList | None = about(
        None, "Replaces the handling table's must rows for retrying (408, 500, 503 in digg)."
    )
    may: StatusList | None = about(
        None, "Replaces the handling table's may rows for retrying (502, 504 in digg)."
    )
    retry_may: Bool = about(True, "Retry the may rows too, not only the must rows.")
    retry_404_routes: StrList = about((), "Route labels (e.g. /cases/{id}) where a 404 is retried.")


@dataclass(frozen=True, slots=True, kw_only=True, config=_MODEL)
class Backoff:
    """Full jitter: random(0, min(max, base * 2^n))."""

    base: Duration = about(0.1, "The first back-off's ceiling; it doubles per attempt.")
    max: Duration = about(2.0, "No back-off is longer.")


@dataclass(frozen=True, slots=True, kw_only=True, config=_MODEL)
class RetryBudget:
    """Retries <= percent of requests in the window, plus min_per_second."""

    percent: Annotated[float, number(0.0, 100.0)] = about(20.0, "Retries per 100 requests.")
    min_per_second: Annotated[float, number(0.0, 1e6)] = about(3.0, "Retries always allowed.")
    window: PositiveDuration = about(10.0, "The sliding window the budget counts in.")


@dataclass(frozen=True, slots=True, kw_only=True, config=_MODEL)
class RetrySettings:
    """Retry on behalf of clients (off by default); a route may carry its own retry:."""

    enabled: Bool = about(False, "Retry failed attempts on behalf of the client.")
    max_attempts: Annotated[int, integer(1, 10)] = about(3, "Total attempts, the first included.")
    statuses: Annotated[RetryStatuses, SECTION] = Field(default_factory=RetryStatuses)
    methods: Methods = about(
        IDEMPOTENT_METHODS,
        "Methods retried without an idempotency key (RFC 9110 idempotent methods).",
    )
    idempotency_key_header: Text = about(
        "Idempotency-Key", "POST/PATCH carrying this header may be retried."
    )
    backoff: Annotated[Backoff, SECTION] = Field(default_factory=Backoff)
    respect_retry_after: Bool = about(True, "Wait the answer's Retry-After (seconds or HTTP-date).")
    max_retry_after: Duration = about(
        10.0, "A longer Retry-After: the answer goes to the client as is."
    )
    per_try_timeout: Duration = about(5.0, "One attempt's wait for the response head.")
    deadline: Duration = about(30.0, "All attempts and back-offs of one exchange.")
    max_buffered_body: Size = about(
        1024**2, "Larger request bodies are streamed once, never retried."
    )
    budget: Annotated[RetryBudget, SECTION] = Field(default_factory=RetryBudget)


@dataclass(frozen=True, slots=True, kw_only=True, config=_MODEL)
class RouteSettings:
    """A route: the first matching prefix wins."""

    prefix: Prefix = about(
        "/", "Matches the path itself and everything under it (/orders, /orders/...)."
    )
    upstream: Url = Field(description="The base URL requests under the prefix go to.")
    templates: StrList = about((), "Metric route labels like /orders/{id}.")
    public: Bool = about(False, "A truly public API: a CORS wildcard origin is allowed (ARP.01).")
    preserve_host: Bool = about(False, "Send the client's Host (true) or the upstream's (false).")
    retry: Annotated[RetrySettings | None, BeforeValidator(_optional_mapping)] = about(
        None, "This route's own retry: keys, laid over the top-level retry: key by key."
    )


DEFAULT_REDACT_HEADERS = ("authorization", "cookie", "set-cookie", "proxy-authorization",
                          "x-api-key")  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True, config=_MODEL)
class RecordSettings:
    """Write exchanges as JSON Lines (HAR entries + _audit)."""

    enabled: Bool = about(False, "Record exchanges (AUDITPROXY_RECORD_DIR turns it on too).")
    dir: Text = about("recordings", "The folder of the recording files.")
    sample: Annotated[float, number(0.0, 1.0)] = about(
        1.0, "Fraction of compliant exchanges recorded."
    )
    always_record_noncompliant: Bool = about(True, "Record every non-compliant exchange.")
    max_body: Size = about(64 * 1024, "Captured per body; the client always gets the whole body.")
    rotate_bytes: Size = about(100 * 1024**2, "Start a new file past this size.")
    keep_files: Annotated[int, integer(1)] = about(20, "Older files are removed.")
    redact_headers: StrList = about(DEFAULT_REDACT_HEADERS, "Header values recorded as REDACTED.")
    redact_json_fields: StrList = about(
        ("password", "token", "access_token", "refresh_token", "secret", "api_key"),
        "JSON members (at any depth) recorded as REDACTED.",
    )
    redact_query_params: StrList = about(
        ("token", "access_token", "api_key", "apikey", "key", "password", "secret", "signature"),
        "Query parameters recorded as REDACTED.",
    )
    queue_size: Annotated[int, integer(1)] = about(10_000, "Exchanges waiting for the writer.")
    on_full: Annotated[str, choice("drop", "block")] = about(
        "drop", "drop: count it, never delay traffic; block: for tests."
    )


@dataclass(frozen=True, slots=True, kw_only=True, config=_MODEL)
class Timeouts:
    connect: Duration = about(2.0, "TCP connect to the upstream -> 502.")
    response_headers: Duration = about(30.0, "Request sent, no response head yet -> 504.")
    idle: Duration = about(60.0, "Pause while reading the upstream body -> abort.")
    total: Duration = about(120.0, "The whole upstream exchange.")
    client_header: Duration = about(
        10.0, "The whole request head must arrive within it (slowloris) -> 408."
    )
    client_read: Duration = about(10.0, "Longest pause while reading a request body -> 408.")
    shutdown_grace: Duration = about(30.0, "SIGTERM: time for in-flight requests to finish.")


@dataclass(frozen=True, slots=True, kw_only=True, config=_MODEL)
class Limits:
    max_request_body: Size = about(10 * 1024**2, "Larger -> 413.")
    max_header_bytes: Size = about(
        16 * 1024, "Per request line (-> 414) and per header field (-> 431)."
    )
    max_connections: Annotated[int, integer(1)] = about(1024, "Upstream connection pool size.")


@dataclass(frozen=True, slots=True, kw_only=True, config=_MODEL)
class LogSettings:
    level: Annotated[str, choice("debug", "info", "warning", "error", "critical")] = about(
        "info", "The least severe log level written."
    )
    format: Annotated[str, choice("json", "console")] = about(
        "json", "json: one object per line; console: for people."
    )


Routes = Annotated[tuple[Annotated[RouteSettings, BeforeValidator(_mapping)], ...],
                   BeforeValidator(_route_list)]  # fmt: skip
Rules = Annotated[Mapping[str, Mapping[str, Any]], Value(parse_rules, {
    "type": "object",
    "additionalProperties": {
        "type": "object", "additionalProperties": False,
        "properties": {"severity": {"enum": list(SEVERITIES)}, "enabled": {"type": "boolean"},
                       "params": {"type": "object"}},
    },
}, dict)]  # fmt: skip
Rewrite = Annotated[tuple[Mapping[str, Any], ...], Value(parse_rewrite, {
    "type": "array",
    "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
}, list)]  # fmt: skip

_DEFAULT_LISTEN = HostPort("0.0.0.0", 8080)
_DEFAULT_ADMIN = HostPort("127.0.0.1", 9464)


@dataclass(frozen=True, slots=True, kw_only=True, config=_MODEL)
class Settings:
    """auditproxy configuration. Every key has a default; unknown keys are errors."""

    listen: Address = about(_DEFAULT_LISTEN, "Traffic address.")
    admin: Address = about(
        _DEFAULT_ADMIN, "/metrics, /healthz, /readyz, /-/... ; never the traffic port."
    )
    upstream: Url | None = about(None, "One upstream for every path; the fallback of routes:.")
    routes: Routes = about((), "The first matching prefix wins; upstream: is the fallback.")
    profile: Text = about(
        "digg",
        "A built-in guideline profile, or a path to a profile folder (relative to the file).",
    )
    rules: Rules = Field(
        default_factory=dict,
        description="Per-rule overrides: rule id -> {severity, enabled, params}.",
    )
    annotate: Annotate = about(
        False, "X-Audit-Findings: <rule ids> on responses (at most 512 bytes)."
    )
    max_routes: Annotated[int, integer(1, 100_000)] = about(
        200, 'Distinct route labels per process, then "other".'
    )
    event_loop: Annotated[str, choice("auto", "asyncio", "uvloop")] = about(
        "auto", "The event loop: auto (uvloop where installed), asyncio or uvloop."
    )
    record: Annotated[RecordSettings, SECTION] = Field(default_factory=RecordSettings)
    retry: Annotated[RetrySettings, SECTION] = Field(default_factory=RetrySettings)
    rewrite: Rewrite = about(
        (),
        "Response rewrite rules, in order: each a name, an optional match and exactly one "
        "action (set_header, add_header_if_missing, remove_header, cors_origin, map_status, "
        "location_from_body); checked against the profile at start-up.",
    )
    timeouts: Annotated[Timeouts, SECTION] = Field(default_factory=Timeouts)
    limits: Annotated[Limits, SECTION] = Field(default_factory=Limits)
    log: Annotated[LogSettings, SECTION] = Field(default_factory=LogSettings)
    # Where the settings came from (not a config key): the file, or None.
    config_file: SkipJsonSchema[str | None] = Field(default=None, exclude=True)


_INTERNAL = frozenset({"config_file"})

_MODEL_ADAPTER: TypeAdapter[Settings] = TypeAdapter(Settings)

# ---------------------------------------------------------------- the model's shape


def _section_in(annotation: object) -> type[Any] | None:
    """The settings section class inside a field's type, if any."""
    if isinstance(annotation, type) and is_pydantic_dataclass(annotation):
        return annotation
    for arg in typing.get_args(annotation):
        found = _section_in(arg)
        if found is not None:
            return found
    return None


def _shape(cls: type[Any], out: dict[type[Any], dict[str, Any]]) -> dict[type[Any], dict[str, Any]]:
    """Each section class -> its config keys -> their (resolved, annotated) types."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out[cls] = {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name not in _INTERNAL}
    for hint in out[cls].values():
        inner = _section_in(hint)
        if inner is not None and inner not in out:
            _shape(inner, out)
    return out


_SHAPE = _shape(Settings, {})


def _section_at(loc: tuple[str | int, ...]) -> type[Any]:
    cls: type[Any] = Settings
    for part in loc:
        if isinstance(part, str):
            inner = _section_in(_SHAPE[cls].get(part))
            cls = inner if inner is not None else cls
    return cls


def _leaf_paths(cls: type[Any], prefix: str = "") -> dict[str, str]:
    """Every scalar/list key path of ``cls`` -> its env var name."""
    out: dict[str, str] = {}
    for name, hint in _SHAPE[cls].items():
        if name in ("routes", "rules", "rewrite"):
            continue
        path = f"{prefix}{name}"
        section = _section_in(hint)
        if section is not None:
            out.update(_leaf_paths(section, path + "."))
        else:
            out[path] = "AUDITPROXY_" + path.replace(".", "_").upper()
    return out


ENV_KEYS: dict[str, str] = _leaf_paths(Settings)
# AUDITPROXY_* variables that are not settings: the config file, the launcher's
# virtualenv, and the test suite's switches.
OTHER_ENV = frozenset({
    "AUDITPROXY_CONFIG", "AUDITPROXY_VENV", "AUDITPROXY_LOAD_TESTS",
    "AUDITPROXY_HYPOTHESIS_EXAMPLES",
})  # fmt: skip

# ---------------------------------------------------------------- errors


def _key_path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unknown_key(source: str, section: tuple[str | int, ...], key: object) -> ConfigError:
    names = sorted(_SHAPE[_section_at(section)])
    where = _key_path((*section, str(key)))
    return ConfigError(source, where, "unknown key, expected one of " + ", ".join(names))


def _expectation(loc: tuple[str | int, ...]) -> str:
    """What a missing key expects, as its type names it."""
    hint = _SHAPE[_section_at(loc[:-1])].get(str(loc[-1]))
    values = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Value)]
    return values[0].noun if values else "a value"


def _config_error(exc: ValidationError, source: str, origins: Mapping[str, str]) -> ConfigError:
    """The first error, as one ConfigError; top-level keys before routes, as a route's
    retry: lies over the top-level one (whose own error then comes first)."""
    errors = sorted(exc.errors(), key=lambda e: e["loc"][:1] == ("routes",))
    error = errors[0]
    loc = tuple(error["loc"])
    where = _key_path(loc)
    src = origins.get(where, source)
    if error["type"] in ("unexpected_keyword_argument", "extra_forbidden", "invalid_key"):
        return _unknown_key(src, loc[:-1], loc[-1])
    if error["type"].startswith("missing"):
        return ConfigError(src, where, f"missing, expected {_expectation(loc)}")
    cause = (error.get("ctx") or {}).get("error")
    expected = str(cause) if isinstance(cause, ValueError) else error["msg"]
    return ConfigError(src, where, f"got {error['input']!r}, {expected}")


# ---------------------------------------------------------------- env


def unknown_env(env: Mapping[str, str]) -> list[str]:
    """One warning per ``AUDITPROXY_*`` variable that sets nothing, naming the
    closest variable that does (a typo would otherwise be ignored silently)."""
    known = sorted(set(ENV_KEYS.values()) | OTHER_ENV)
    out = []
    for name in sorted(env):
        if name.startswith("AUDITPROXY_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            out.append(f"environment variable {name} matches no setting{hint}")
    return out


def _warn_unknown_env(env: Mapping[str, str]) -> None:
    for line in unknown_env(env):
        print(f"auditproxy: warning: {line}", file=sys.stderr)


Override = tuple[object, str]  # (raw value, source label)


def _overrides(env: Mapping[str, str], flags: Mapping[str, object]) -> dict[str, Override]:
    out: dict[str, Override] = {}
    for path, name in ENV_KEYS.items():
        if env.get(name, "") != "":
            out[path] = (env[name], f"<env {name}>")
    if env.get("AUDITPROXY_RECORD_DIR") and "record.enabled" not in out:
        out["record.enabled"] = ("true", "<env AUDITPROXY_RECORD_DIR>")
    for path, value in flags.items():
        if value is not None:
            out[path] = (value, "<flags>")
    return out


def _set(data: dict[str, Any], path: str, value: object) -> bool:
    """Put ``value`` at the dotted ``path``, copying the mappings on the way; False
    when the file has something else than a mapping there (its own error stands)."""
    *parents, leaf = path.split(".")
    node = data
    for key in parents:
        child = node.get(key)
        if child is not None and not isinstance(child, Mapping):
            return False
        node[key] = dict(child or {})
        node = node[key]
    node[leaf] = value
    return True


def _lay_over(base: object, own: Mapping[str, Any]) -> dict[str, Any]:
    """``own`` over ``base`` key by key, nested mappings too; a ``null`` section keeps
    the base's."""
    out = dict(base) if isinstance(base, Mapping) else {}
    for key, value in own.items():
        if isinstance(out.get(key), Mapping) and (value is None or isinstance(value, Mapping)):
            out[key] = _lay_over(out[key], value or {})
        else:
            out[key] = value
    return out


def _with_route_retry(data: dict[str, Any]) -> None:
    """Each route's ``retry:`` becomes the effective one: the top-level ``retry:``
    with the route's keys laid over it."""
    routes = data.get("routes")
    if not isinstance(routes, list):
        return
    data["routes"] = [
        {**r, "retry": _lay_over(data.get("retry"), r["retry"])}
        if isinstance(r, Mapping) and isinstance(r.get("retry"), Mapping)
        else r
        for r in routes
    ]


# ---------------------------------------------------------------- the file


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an
    error (PyYAML keeps the last one silently). Keys brought in by a ``<<:`` merge
    may still be overridden, as YAML intends."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = key_node.value
            if key in seen:
                first = seen[key].start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given at line {first})",
                    key_node.start_mark,
                )  # fmt: skip
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def read_config_file(path: str) -> dict[str, Any]:
    """The YAML mapping in ``path`` (empty file -> {}); ConfigError on any problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, "-", f"cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        what = f"not UTF-8 text ({exc.reason}); save the file as UTF-8"
        raise ConfigError(path, f"byte {exc.start}", what) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "-"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(path, where, f"invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(path, "-", f"got {type(data).__name__}, expected a mapping of keys")
    return data


def _profile_near_the_file(config_file: str, profile: object) -> object:
    """Like Prometheus' rule_files: a relative profile folder in a config file is
    relative to that file, so the file works from any working directory."""
    if not isinstance(profile, str) or not profile.strip():
        return profile
    candidate = Path(config_file).parent / profile.strip()
    if not Path(profile.strip()).is_absolute() and candidate.exists():
        return str(candidate)
    return profile


def load_settings(
    config_file: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, object] | None = None,
) -> Settings:
    """Defaults <- file <- env <- flags, validated once. ``flags`` maps key paths
    (``upstream``, ``record.dir``) to values; ``None`` values are ignored."""
    source = config_file or "<defaults>"
    data = read_config_file(config_file) if config_file else {}
    _warn_unknown_env(env or {})
    if "config_file" in data:  # a field of Settings, not a key of the file
        raise _unknown_key(source, (), "config_file")
    overrides = _overrides(env or {}, flags or {})
    if config_file and "profile" in data and "profile" not in overrides:
        data["profile"] = _profile_near_the_file(config_file, data["profile"])
    origins = {path: label for path, (value, label) in overrides.items() if _set(data, path, value)}
    _with_route_retry(data)
    data["config_file"] = config_file
    try:
        settings = _MODEL_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise _config_error(exc, source, origins) from None
    if settings.upstream is None and not settings.routes:
        raise ConfigError(
            source, "upstream", "missing, expected a URL like http://127.0.0.1:8000 "
            "(or a routes: list; or --upstream / AUDITPROXY_UPSTREAM)"
        )  # fmt: skip
    return settings


def dump_yaml(settings: Settings) -> str:
    """The effective configuration as YAML (durations and sizes as text)."""
    data = _MODEL_ADAPTER.dump_python(settings, mode="json")
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


# ---------------------------------------------------------------- JSON Schema


class _SchemaOfTheFile(GenerateJsonSchema):
    """Defaults written as in the file (``2s``, not 2.0), and no generated titles."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        out = self.generate_inner(schema["schema"])
        if "default" not in schema:  # a default_factory: a section, described by its keys
            return out
        try:
            printer = SchemaSerializer(schema["schema"])
        except SchemaError:  # a type that refers to a section (routes): plain JSON will do
            return {**out, "default": to_jsonable_python(schema["default"])}
        return {**out, "default": printer.to_python(schema["default"], mode="json")}

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a config file, for editors and CI."""
    body = _MODEL_ADAPTER.json_schema(schema_generator=_SchemaOfTheFile)
    body.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "auditproxy configuration",
        **body,
    }
