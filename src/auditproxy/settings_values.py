"""The value types of the settings: how each YAML scalar or env string is read,
printed back and described to editors.

Each type is an ``Annotated`` alias for the settings model: the parser (raises
``ValueError("expected ...")``, the text every config error ends with), the
printer for ``check-config`` and the JSON Schema an editor checks the file with.
Parsers also take the value they return, so a section may be rebuilt from its
own fields (``dataclasses.replace``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema
from yarl import URL

Parser = Callable[[Any], Any]

# The loader's patterns are also the JSON Schema's (ECMA-262 reads them the same way).
DURATION_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$"
SIZE_PATTERN = r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$"
_DURATION = re.compile(DURATION_PATTERN)
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(SIZE_PATTERN)
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


def parse_positive_duration(value: object) -> float:
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


def _int_parser(lo: int, hi: int | None) -> Parser:
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


def parse_prefix(value: object) -> str:
    prefix = parse_str(value)
    if not prefix.startswith("/"):
        raise ValueError("expected a path starting with /")
    return prefix


def _enum_parser(choices: tuple[str, ...]) -> Parser:
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


def parse_methods(value: object) -> tuple[str, ...]:
    return tuple(m.upper() for m in parse_str_list(value))


def parse_status_list(value: object) -> tuple[int, ...]:
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
    if isinstance(value, HostPort):
        return value
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


def parse_annotate(value: object) -> bool | Literal["request"]:
    """``annotate:``: true, false, or ``request`` (only for requests with X-Audit-Debug: 1)."""
    if isinstance(value, str) and value.strip().lower() == "request":
        return "request"
    try:
        return parse_bool(value)
    except ValueError:
        raise ValueError("expected true, false or request") from None


def parse_rules(value: object) -> Mapping[str, Mapping[str, Any]]:
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()
    ):
        return {k: dict(v) for k, v in value.items()}
    raise ValueError("expected a mapping of rule id -> {severity, enabled, params}")


def parse_rewrite(value: object) -> tuple[Mapping[str, Any], ...]:
    if isinstance(value, list | tuple) and all(isinstance(v, Mapping) for v in value):
        return tuple(dict(v) for v in value)
    raise ValueError("expected a list of rewrite rules (mappings)")


# ---------------------------------------------------------------- the types

HOST_PORT_PATTERN = (
    r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]*):"
    r"(6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]\d{4}|\d{1,4})$"
)


@dataclass(frozen=True, eq=False)  # hashed by identity: the schema is a dict
class Value:
    """``Annotated`` metadata of one value type: its parser (the whole validation,
    so every error is the parser's own text), its JSON Schema and its printer."""

    parse: Parser
    schema: Mapping[str, Any]
    dump: Callable[[Any], Any] | None = None
    noun: str = "a value"  # what a missing key expects

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        dump = self.dump
        return core_schema.no_info_plain_validator_function(
            self.parse,
            serialization=core_schema.plain_serializer_function_ser_schema(dump)
            if dump is not None
            else None,
        )

    def __get_pydantic_json_schema__(self, core: Any, handler: GetJsonSchemaHandler) -> Any:
        return dict(self.schema)


def _either(text: str, *alternatives: Mapping[str, Any]) -> dict[str, Any]:
    body = {"anyOf": list(alternatives)} if len(alternatives) > 1 else dict(alternatives[0])
    return {**body, "description": text}


def integer(lo: int, hi: int | None = None) -> Value:
    bounds = {"minimum": lo} | ({"maximum": hi} if hi is not None else {})
    return Value(_int_parser(lo, hi), {"type": "integer", **bounds})


def number(lo: float, hi: float) -> Value:
    return Value(_float_parser(lo, hi), {"type": "number", "minimum": lo, "maximum": hi})


def choice(*choices: str) -> Value:
    return Value(_enum_parser(choices), {"enum": list(choices)})


_STRINGS = {"type": "array", "items": {"type": "string"}}

Duration = Annotated[float, Value(parse_duration, _either(
    "a duration like 250ms, 5s, 2m or 1h (a plain number is seconds)",
    {"type": "string", "pattern": DURATION_PATTERN}, {"type": "number", "minimum": 0},
), format_duration)]  # fmt: skip
PositiveDuration = Annotated[float, Value(parse_positive_duration, _either(
    "a duration above zero like 10s (a plain number is seconds)",
    {"type": "string", "pattern": DURATION_PATTERN}, {"type": "number", "exclusiveMinimum": 0},
), format_duration)]  # fmt: skip
Size = Annotated[int, Value(parse_size, _either(
    "a size like 512, 64KiB or 10MiB (KB, MB, GB: powers of 1000)",
    {"type": "string", "pattern": SIZE_PATTERN}, {"type": "integer", "minimum": 0},
), format_size)]  # fmt: skip
Bool = Annotated[bool, Value(parse_bool, {"type": "boolean"})]
Text = Annotated[str, Value(parse_str, {"type": "string", "pattern": r"\S"})]
Prefix = Annotated[str, Value(parse_prefix, {"type": "string", "pattern": "^/"})]
Url = Annotated[str, Value(parse_url, _either(
    "an http:// or https:// base URL without query or fragment, like http://127.0.0.1:8000",
    {"type": "string", "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^?#\s]+$"},
), noun="a URL")]  # fmt: skip
Address = Annotated[HostPort, Value(parse_host_port, _either(
    "host:port, [v6]:port or :port (all interfaces); port 0 = any free port",
    {"type": "string", "pattern": HOST_PORT_PATTERN},
    {"type": "integer", "minimum": 0, "maximum": 65535},
), str)]  # fmt: skip
StrList = Annotated[tuple[str, ...], Value(parse_str_list, _STRINGS, list)]
Methods = Annotated[tuple[str, ...], Value(parse_methods, _STRINGS, list)]
StatusList = Annotated[tuple[int, ...], Value(parse_status_list, {
    "type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 599},
}, list)]  # fmt: skip
Annotate = Annotated[bool | Literal["request"], Value(parse_annotate, _either(
    "true: on every response; false: never; request: only for requests with X-Audit-Debug: 1",
    {"enum": [True, False, "request"]},
))]  # fmt: skip
