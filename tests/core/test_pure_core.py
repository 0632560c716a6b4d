"""The core is sans-I/O: it imports only the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "src" / "auditproxy" / "core"
FORBIDDEN_CALLS = {"open", "time", "monotonic", "perf_counter", "now", "getenv"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_core_imports_only_stdlib() -> None:
    """Every module in core/ imports the standard library or auditproxy.core only."""
    files = sorted(CORE.glob("*.py"))
    assert files
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            ok = top in sys.stdlib_module_names or top == "__future__"
            ok = ok or name == "auditproxy.core" or name.startswith("auditproxy.core.")
            assert ok, f"{path.name} imports {name}"


def test_core_reads_no_clock_or_files() -> None:
    """No core module calls open(), a clock or the environment."""
    for path in sorted(CORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", "")
                assert name not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {name}"
