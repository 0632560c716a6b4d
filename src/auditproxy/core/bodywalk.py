"""What the payload rules need from a parsed JSON document, gathered in one bounded walk.

``walk(doc)`` visits the document once (at most ``max_nodes`` values) and keeps
the distinct field names and the string values that look like dates.
``naming_style`` and ``date_problem`` classify what the walk found; the checks
(AME.*, DOT.*) and the per-API naming tally (``core/conventions.py``) share them.
Pure functions over plain values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Literal

from auditproxy.core.httpsyntax import is_rfc3339

MAX_NODES = 4096  # JSON values visited per document
MAX_DATES = 64  # date-like strings kept per document
_MAX_DATE_LEN = 64

Style = Literal["camel", "snake", "word", "other", "chars", "data"]
DateProblem = Literal["format", "no-zone", "not-utc"]

_WORD = re.compile(r"[a-z][a-z0-9]*")
_CAMEL = re.compile(r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+")
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
_ALNUM = re.compile(r"[A-Za-z0-9_]+")
# Strings that read as a date or a time stamp in some notation.
_DATE_LIKE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:$|[Tt ]\d)|\d{4}/\d{1,2}/\d{1,2}\b|\d{1,2}[./-]\d{1,2}[./-]\d{4}\b"
    r"|\d{8}T\d{4}|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? \d{1,2}[ -][A-Z][a-z]{2}"
)
_DATE_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2})(:\d{2}(?:\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?"
)
_UTC_OFFSETS = frozenset({"Z", "z", "+00:00", "-00:00"})


class Walk:
    """The distinct field names and the date-like strings of one JSON document.

    Paths are not built during the walk (most bodies pass every rule): ``path_of``
    finds where a field name or a value occurs when a message needs it."""

    __slots__ = ("_problems", "_styles", "complete", "dates", "doc", "keys")

    def __init__(self, doc: object, keys: set[str], dates: tuple[str, ...], complete: bool) -> None:
        self.doc = doc
        self.keys = keys  # distinct field names
        self.dates = dates  # date-like string values, in document order
        self.complete = complete  # False when the node budget ran out before the end
        self._styles: dict[str, list[str]] | None = None
        self._problems: dict[str, list[str]] | None = None

    def date_problems(self) -> dict[str, list[str]]:
        """The date-like values per ``date_problem`` (computed once)."""
        if self._problems is None:
            problems: dict[str, list[str]] = {}
            for value in self.dates:
                problem = date_problem(value)
                if problem is not None:
                    problems.setdefault(problem, []).append(value)
            self._problems = problems
        return self._problems

    def by_style(self) -> dict[str, list[str]]:
        """The field names per ``naming_style``, each list sorted (computed once)."""
        if self._styles is None:
            styles: dict[str, list[str]] = {}
            for key in sorted(self.keys):
                styles.setdefault(naming_style(key), []).append(key)
            self._styles = styles
        return self._styles

    def path_of(self, *, key: str | None = None, value: str | None = None) -> str:
        """The JSON path of the first member named ``key`` or the first string ``value``."""
        todo: list[tuple[str, object]] = [("$", self.doc)]
        i = 0
        while i < len(todo) and i < MAX_NODES:
            path, node = todo[i]
            i += 1
            if node == value and isinstance(node, str):
                return path
            if isinstance(node, dict):
                if key is not None and key in node:
                    return f"{path}.{key}"
                todo.extend((f"{path}.{k}", v) for k, v in node.items())
            elif isinstance(node, list):
                todo.extend((f"{path}[{n}]", v) for n, v in enumerate(node))
        return "$"


def walk(doc: object, *, max_nodes: int = MAX_NODES) -> Walk:
    """Visit ``doc`` breadth-first, at most ``max_nodes`` values."""
    keys: set[str] = set()
    dates: list[str] = []
    todo: list[object] = [doc]
    visited = 0
    i = 0
    while i < len(todo):
        node = todo[i]
        i += 1
        if type(node) is dict:
            keys.update(node)
            values: Iterable[object] = node.values()
        elif type(node) is list:
            values = node
        else:  # a scalar document
            if type(node) is str and _looks_like_date(node):
                dates.append(node)
            continue
        visited += len(node)
        if visited > max_nodes:
            return Walk(doc, keys, tuple(dates), False)
        for v in values:
            t = type(v)
            if t is dict or t is list:
                todo.append(v)
            elif t is str and len(dates) < MAX_DATES and _looks_like_date(v):  # type: ignore[arg-type]
                dates.append(v)  # type: ignore[arg-type]
    return Walk(doc, keys, tuple(dates), True)


def _looks_like_date(value: str) -> bool:
    if not 6 <= len(value) <= _MAX_DATE_LEN:
        return False
    first = value[0]
    if not (first.isdigit() or first in "MTWFS"):
        return False
    return _DATE_LIKE.match(value) is not None


@lru_cache(maxsize=4096)  # field names repeat from body to body
def naming_style(key: str) -> Style:
    """``camel`` (orderId), ``snake`` (order_id), ``word`` (one lower-case word,
    fits both), ``other`` (PascalCase, UPPER_CASE, order_Id), ``chars`` (other
    characters than letters, digits and ``_``), or ``data`` for keys that begin
    with a digit (map keys such as dates or ids, not field names)."""
    if not key or key[0].isdigit():
        return "data"
    if _WORD.fullmatch(key):
        return "word"
    if _CAMEL.fullmatch(key):
        return "camel"
    if _SNAKE.fullmatch(key):
        return "snake"
    return "other" if _ALNUM.fullmatch(key) else "chars"


def date_problem(value: str) -> DateProblem | None:
    """Why a date-like string breaks the DOT rules: ``format`` (not RFC 3339),
    ``no-zone`` (an RFC 3339-shaped date-time without offset), ``not-utc`` (an
    offset other than Z/+00:00); ``None`` for an RFC 3339 date or UTC date-time."""
    text = value.strip()
    if len(text) == 10 and is_rfc3339(text):
        return None  # full-date: the time part left out (DOT.01 allows it)
    m = _DATE_TIME.fullmatch(text)
    if m is None:
        return "format"
    seconds, offset = m.group(4), m.group(5)
    if seconds is None or (offset is not None and offset not in ("Z", "z") and ":" not in offset):
        return "format"  # RFC 3339 needs seconds and an hh:mm offset
    if offset is None:
        plain = f"{m.group(1)}T{m.group(2)}:{m.group(3)}{seconds}Z"
        return "no-zone" if is_rfc3339(plain) else "format"
    if not is_rfc3339(text):
        return "format"
    return None if offset in _UTC_OFFSETS else "not-utc"
