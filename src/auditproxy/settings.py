"""Settings: defaults <- YAML file <- ``AUDITPROXY_*`` env <- command-line flags.

Everything is parsed and validated once into frozen dataclasses; code further in
trusts the record. Each field carries its parser in ``metadata`` so one generic
builder handles every section, every error names the source (file, env var or
flags), the key path and the bad value, and ``as_dict`` can print the effective
configuration back (``auditproxy check-config``).

Env vars map to scalar keys by path: ``timeouts.connect`` <- ``AUDITPROXY_TIMEOUTS_CONNECT``,
``record.dir`` <- ``AUDITPROXY_RECORD_DIR``. Lists from env are comma separated.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from yarl import URL

from auditproxy.core.errors import ConfigError
from auditproxy.core.retry import IDEMPOTENT_METHODS

T = TypeVar("T")
Parser = Callable[[object], Any]
Dumper = Callable[[Any], Any]

# ---------------------------------------------------------------- value parsers
# A parser takes the raw value (YAML scalar or env/flag string) and returns the
# typed value, or raises ValueError("expected ...").

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$")
_SIZE_UNITS = {
    None: 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3,
    "KB": 1000, "MB": 1000**2, "GB": 1000**3,
}  # fmt: skip


def parse_duration(value: object) -> float:
    """``250ms``, ``5s``, ``2m``, ``1h`` or a plain number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 250ms, 5s or 2m")
    if isinstance(value, int | float) and value >= 0:
        return float(value)
    m = _DURATION.match(value) if isinstance(value, str) else None
    if not m:
        raise ValueError("expected a duration like 250ms, 5s or 2m")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


def parse_size(value: object) -> int:
    """``512``, ``64KiB``, ``10MiB`` (also KB/MB/GB, powers of 1000) -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    m = _SIZE.match(value) if isinstance(value, str) else None
    if not m:
        raise ValueError("expected a size like 512, 64KiB or 10MiB")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2)]


def format_duration(seconds: float) -> str:
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    return f"{s // 60}m" if s and s % 60 == 0 else f"{s}s"


def format_size(size: int) -> str | int:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return size


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("expected a duration above zero like 10s")
    return seconds


def parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "off", "0"):
        return False
    raise ValueError("expected true or false")


def _int_parser(lo: int, hi: int | None = None) -> Parser:
    def parse(value: object) -> int:
        try:
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError
            n = int(value)
        except ValueError:
            n = None
        if n is None or n < lo or (hi is not None and n > hi):
            raise ValueError(f"expected an integer >= {lo}" + (f" and <= {hi}" if hi else ""))
        return n

    return parse


def _float_parser(lo: float, hi: float) -> Parser:
    def parse(value: object) -> float:
        try:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError
            x = float(value)
        except ValueError:
            x = None
        if x is None or not lo <= x <= hi:
            raise ValueError(f"expected a number between {lo:g} and {hi:g}")
        return x

    return parse


def parse_str(value: object) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError("expected a non-empty string")


def _enum_parser(*choices: str) -> Parser:
    def parse(value: object) -> str:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise ValueError("expected one of " + ", ".join(choices))

    return parse


def parse_str_list(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str | int) for v in value):
        return tuple(str(v) for v in value)
    raise ValueError("expected a list of strings")


def _int_list(value: object) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, list | tuple):
        try:
            codes = tuple(int(v) for v in items if not isinstance(v, bool))
        except (TypeError, ValueError):
            codes = ()
        if len(codes) == len(items) and all(100 <= c <= 599 for c in codes):
            return codes
    raise ValueError("expected a list of status codes (100-599)")


def parse_url(value: object) -> str:
    """An absolute ``http``/``https`` URL with a host and no query or fragment."""
    expected = "expected an http:// or https:// URL like http://127.0.0.1:8000"
    if not isinstance(value, str):
        raise ValueError(expected)
    try:
        url = URL(value.strip())
        port = url.port
    except ValueError:
        raise ValueError(expected) from None
    if url.query_string or url.fragment:
        part = "a query string (?...)" if url.query_string else "a fragment (#...)"
        raise ValueError(
            f"has {part}; expected a base URL without one (each request's own query "
            "is forwarded as it came), like http://127.0.0.1:8000/api"
        )
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(expected)
    if port is None or not 0 < port < 65536:
        raise ValueError(expected)
    return str(url).rstrip("/")


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_host_port(value: object) -> HostPort:
    """``host:port``, ``[v6]:port`` or ``:port`` (all interfaces); port 0 = any free port."""
    expected = "expected host:port like 127.0.0.1:8080 (port 0-65535)"
    if isinstance(value, int) and not isinstance(value, bool):
        value = f":{value}"
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(expected)
    host, _, port_s = value.strip().rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port_s.isdigit() or int(port_s) > 65535:
        raise ValueError(expected)
    return HostPort(host, int(port_s))


def _meta(parse: Parser, dump: Dumper | None = None) -> dict[str, Any]:
    return {"parse": parse, "dump": dump}


def _f(default: Any, parse: Parser, dump: Dumper | None = None) -> Any:
    return field(default=default, metadata=_meta(parse, dump))


_DUR = (parse_duration, format_duration)
_SZ = (parse_size, format_size)

# ---------------------------------------------------------------- the sections


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteSettings:
    prefix: str = _f("/", parse_str)
    upstream: str = _f("", parse_url)
    templates: tuple[str, ...] = _f((), parse_str_list, list)
    public: bool = _f(False, parse_bool)
    preserve_host: bool = _f(False, parse_bool)
    # The route's effective retry settings: the top-level ``retry:`` with this
    # route's ``retry:`` keys laid over it key by key; None when it has none.
    retry: RetrySettings | None = None


DEFAULT_REDACT_HEADERS = ("authorization", "cookie", "set-cookie", "proxy-authorization",
                          "x-api-key")  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordSettings:
    enabled: bool = _f(False, parse_bool)
    dir: str = _f("recordings", parse_str)
    sample: float = _f(1.0, _float_parser(0.0, 1.0))
    always_record_noncompliant: bool = _f(True, parse_bool)
    max_body: int = _f(64 * 1024, *_SZ)
    rotate_bytes: int = _f(100 * 1024**2, *_SZ)
    keep_files: int = _f(20, _int_parser(1))
    redact_headers: tuple[str, ...] = _f(DEFAULT_REDACT_HEADERS, parse_str_list, list)
    redact_json_fields: tuple[str, ...] = _f(
        ("password", "token", "access_token", "refresh_token", "secret", "api_key"),
        parse_str_list,
        list,
    )
    redact_query_params: tuple[str, ...] = _f(
        ("token", "access_token", "api_key", "apikey", "key", "password", "secret", "signature"),
        parse_str_list,
        list,
    )
    queue_size: int = _f(10_000, _int_parser(1))
    on_full: str = _f("drop", _enum_parser("drop", "block"))


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryStatuses:
    # None: the profile's handling table says (its must / may rows); a list
    # replaces that table column for retrying.
    must: tuple[int, ...] | None = _f(None, _int_list, list)
    may: tuple[int, ...] | None = _f(None, _int_list, list)
    retry_may: bool = _f(True, parse_bool)
    retry_404_routes: tuple[str, ...] = _f((), parse_str_list, list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    base: float = _f(0.1, *_DUR)
    max: float = _f(2.0, *_DUR)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryBudget:
    percent: float = _f(20.0, _float_parser(0.0, 100.0))
    min_per_second: float = _f(3.0, _float_parser(0.0, 1e6))
    window: float = _f(10.0, _positive_duration, format_duration)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrySettings:
    enabled: bool = _f(False, parse_bool)
    max_attempts: int = _f(3, _int_parser(1, 10))
    statuses: RetryStatuses = field(default_factory=RetryStatuses)
    methods: tuple[str, ...] = _f(
        IDEMPOTENT_METHODS,
        lambda v: tuple(m.upper() for m in parse_str_list(v)),
        list,
    )
    idempotency_key_header: str = _f("Idempotency-Key", parse_str)
    backoff: Backoff = field(default_factory=Backoff)
    respect_retry_after: bool = _f(True, parse_bool)
    max_retry_after: float = _f(10.0, *_DUR)
    per_try_timeout: float = _f(5.0, *_DUR)
    deadline: float = _f(30.0, *_DUR)
    max_buffered_body: int = _f(1024**2, *_SZ)
    budget: RetryBudget = field(default_factory=RetryBudget)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    connect: float = _f(2.0, *_DUR)
    response_headers: float = _f(30.0, *_DUR)
    idle: float = _f(60.0, *_DUR)
    total: float = _f(120.0, *_DUR)
    client_header: float = _f(10.0, *_DUR)
    client_read: float = _f(10.0, *_DUR)
    shutdown_grace: float = _f(30.0, *_DUR)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_request_body: int = _f(10 * 1024**2, *_SZ)
    max_header_bytes: int = _f(16 * 1024, *_SZ)
    max_connections: int = _f(1024, _int_parser(1))


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSettings:
    level: str = _f("info", _enum_parser("debug", "info", "warning", "error", "critical"))
    format: str = _f("json", _enum_parser("json", "console"))


def parse_annotate(value: object) -> bool | Literal["request"]:
    """``annotate:``: true, false, or ``request`` (only for requests with X-Audit-Debug: 1)."""
    if isinstance(value, str) and value.strip().lower() == "request":
        return "request"
    try:
        return parse_bool(value)
    except ValueError:
        raise ValueError("expected true, false or request") from None


def _rules(value: object) -> Mapping[str, Mapping[str, Any]]:
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()
    ):
        return {k: dict(v) for k, v in value.items()}
    raise ValueError("expected a mapping of rule id -> {severity, enabled, params}")


def _rewrite(value: object) -> tuple[Mapping[str, Any], ...]:
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        return tuple(dict(v) for v in value)
    raise ValueError("expected a list of rewrite rules (mappings)")


_DEFAULT_LISTEN = HostPort("0.0.0.0", 8080)
_DEFAULT_ADMIN = HostPort("127.0.0.1", 9464)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    # HostPort is frozen, so sharing one default instance is safe.
    listen: HostPort = _f(_DEFAULT_LISTEN, parse_host_port, str)  # noqa: RUF009
    admin: HostPort = _f(_DEFAULT_ADMIN, parse_host_port, str)  # noqa: RUF009
    upstream: str | None = _f(None, parse_url)
    routes: tuple[RouteSettings, ...] = field(default=(), metadata=_meta(parse_str))
    profile: str = _f("digg", parse_str)
    rules: Mapping[str, Mapping[str, Any]] = field(
        default_factory=dict, metadata=_meta(_rules, dict)
    )
    annotate: bool | Literal["request"] = _f(False, parse_annotate)
    max_routes: int = _f(200, _int_parser(1, 100_000))
    event_loop: str = _f("auto", _enum_parser("auto", "asyncio", "uvloop"))
    record: RecordSettings = field(default_factory=RecordSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    rewrite: tuple[Mapping[str, Any], ...] = _f((), _rewrite, list)
    timeouts: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)
    log: LogSettings = field(default_factory=LogSettings)
    # Where the settings came from (not a config key): the file, or None.
    config_file: str | None = field(default=None, metadata={"internal": True})


# ---------------------------------------------------------------- building


def _is_section(f: dataclasses.Field[Any]) -> bool:
    return isinstance(f.type, str) and f.type in _SECTIONS


_SECTIONS: dict[str, type[Any]] = {
    "RecordSettings": RecordSettings,
    "RetryStatuses": RetryStatuses,
    "Backoff": Backoff,
    "RetryBudget": RetryBudget,
    "RetrySettings": RetrySettings,
    "Timeouts": Timeouts,
    "Limits": Limits,
    "LogSettings": LogSettings,
}

Override = tuple[object, str]  # (raw value, source label)


def _build(
    cls: type[T],
    raw: Mapping[str, Any],
    prefix: str,
    source: str,
    overrides: Mapping[str, Override],
    base: T | None = None,
) -> T:
    """``cls`` from the mapping ``raw`` (keys at ``prefix``); with ``base``, the keys
    given replace base's values and the rest stay as in base."""
    names = {f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
             if not f.metadata.get("internal")}  # fmt: skip
    for key in raw:
        if key not in names:
            raise ConfigError(
                source, f"{prefix}{key}", "unknown key, expected one of " + ", ".join(sorted(names))
            )
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in names:
            continue
        path = f"{prefix}{f.name}"
        if _is_section(f):
            sub = raw.get(f.name, {})
            if sub is None:
                sub = {}
            if not isinstance(sub, Mapping):
                raise ConfigError(source, path, f"got {sub!r}, expected a mapping")
            if base is not None and f.name not in raw:
                continue
            inner = getattr(base, f.name) if base is not None else None
            kwargs[f.name] = _build(
                _SECTIONS[str(f.type)], sub, path + ".", source, overrides, inner
            )
            continue
        if f.name == "routes" and cls is Settings:
            continue  # built last: a route's retry: lies over the top-level one
        if path in overrides:
            value, where_from = overrides[path]
        elif f.name in raw:
            value, where_from = raw[f.name], source
        else:
            continue
        if value is None and f.default is None:
            kwargs[f.name] = None
            continue
        try:
            kwargs[f.name] = f.metadata["parse"](value)
        except ValueError as exc:
            raise ConfigError(where_from, path, f"got {value!r}, {exc}") from None
    if cls is Settings:
        kwargs["routes"] = _build_routes(raw.get("routes"), source, kwargs["retry"])
    if base is not None:
        return dataclasses.replace(base, **kwargs)  # type: ignore[type-var]
    return cls(**kwargs)


def _build_routes(raw: object, source: str, retry: RetrySettings) -> tuple[RouteSettings, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(source, "routes", f"got {raw!r}, expected a list of routes")
    routes = []
    for i, item in enumerate(raw):
        where = f"routes[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(source, where, f"got {item!r}, expected a mapping")
        if "upstream" not in item:
            raise ConfigError(source, f"{where}.upstream", "missing, expected a URL")
        fields = {k: v for k, v in item.items() if k != "retry"}
        route = _build(RouteSettings, fields, where + ".", source, {})
        if item.get("retry") is not None:
            sub = item["retry"]
            if not isinstance(sub, Mapping):
                raise ConfigError(source, f"{where}.retry", f"got {sub!r}, expected a mapping")
            own = _build(RetrySettings, sub, f"{where}.retry.", source, {}, retry)
            route = dataclasses.replace(route, retry=own)
        if not route.prefix.startswith("/"):
            raise ConfigError(
                source, f"{where}.prefix", f"got {route.prefix!r}, expected a path starting with /"
            )
        routes.append(route)
    return tuple(routes)


def _leaf_paths(cls: type[Any], prefix: str = "") -> dict[str, str]:
    """Every scalar/list key path of ``cls`` -> its env var name."""
    out: dict[str, str] = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal") or f.name in ("routes", "rules", "rewrite"):
            continue
        path = f"{prefix}{f.name}"
        if _is_section(f):
            out.update(_leaf_paths(_SECTIONS[str(f.type)], path + "."))
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


def load_settings(
    config_file: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, object] | None = None,
) -> Settings:
    """Defaults <- file <- env <- flags, validated once. ``flags`` maps key paths
    (``upstream``, ``record.dir``) to values; ``None`` values are ignored."""
    source = config_file or "<defaults>"
    raw = read_config_file(config_file) if config_file else {}
    overrides: dict[str, Override] = {}
    _warn_unknown_env(env or {})
    for path, name in ENV_KEYS.items():
        if env and name in env and env[name] != "":
            overrides[path] = (env[name], f"<env {name}>")
    if env and env.get("AUDITPROXY_RECORD_DIR") and "record.enabled" not in overrides:
        overrides["record.enabled"] = ("true", "<env AUDITPROXY_RECORD_DIR>")
    for path, value in (flags or {}).items():
        if value is not None:
            overrides[path] = (value, "<flags>")
    settings = _build(Settings, raw, "", source, overrides)
    if settings.upstream is None and not settings.routes:
        raise ConfigError(
            source, "upstream", "missing, expected a URL like http://127.0.0.1:8000 "
            "(or a routes: list; or --upstream / AUDITPROXY_UPSTREAM)"
        )  # fmt: skip
    profile = settings.profile
    if config_file and "profile" in raw and "profile" not in overrides:
        # Like Prometheus' rule_files: a relative profile folder in a config file is
        # relative to that file, so the file works from any working directory.
        candidate = Path(config_file).parent / profile
        if not Path(profile).is_absolute() and candidate.exists():
            profile = str(candidate)
    return dataclasses.replace(settings, config_file=config_file, profile=profile)


def as_dict(obj: Any) -> Any:
    """The effective configuration as plain YAML-able data (durations/sizes as text)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            if f.metadata.get("internal"):
                continue
            value = getattr(obj, f.name)
            dump = f.metadata.get("dump")
            if value is not None and dump is not None:
                out[f.name] = dump(value)
            elif dataclasses.is_dataclass(value):
                out[f.name] = as_dict(value)
            elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
                out[f.name] = [as_dict(v) for v in value]
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            else:
                out[f.name] = value
        return out
    return obj


def dump_yaml(settings: Settings) -> str:
    return yaml.safe_dump(as_dict(settings), sort_keys=False, default_flow_style=False)
