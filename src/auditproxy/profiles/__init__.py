"""Loading guideline profiles (YAML) into the core's Profile record.

A profile is a folder with ``matrix.yaml``, ``handling.yaml`` and
``rules.yaml`` (the built-in ``digg`` ships as package data), or one YAML
file with the keys ``profile``, ``version``, ``matrix``, ``handling`` and
``rules``. YAML is read here; validation lives in ``core.guidelines``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from auditproxy.core.errors import ConfigError
from auditproxy.core.guidelines import build_profile
from auditproxy.core.profile import Profile

BUILTIN = ("digg",)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader when libyaml is there
_FILES = ("matrix", "handling", "rules")


def _read(entry: Traversable | Path, label: str) -> Any:
    try:
        text = entry.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(label, "<file>", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(label, "<file>", f"cannot read: {exc}") from None
    try:
        return yaml.load(text, Loader=_LOADER)  # _LOADER is a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "<file>"
        raise ConfigError(label, where, f"invalid YAML: {getattr(exc, 'problem', exc)}") from None


def _folder(base: Traversable | Path, label: str) -> dict[str, Any]:
    docs: dict[str, Any] = {}
    for name in _FILES:
        docs[name] = _read(base / f"{name}.yaml", f"{label}/{name}.yaml")
    return docs


def load_profile(
    ref: str = "digg",
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    source: str = "<config>",
) -> Profile:
    """Load the built-in profile ``ref`` or a profile folder/file at path ``ref``.

    ``overrides`` is the config's ``rules:`` mapping (rule id -> {severity, enabled,
    params}). Raises ConfigError naming ``source`` and the key on any mistake.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise ConfigError(source, "profile", f"got {ref!r}, expected 'digg' or a path")
    if ref in BUILTIN:
        base = resources.files("auditproxy.profiles") / ref
        label = f"<builtin {ref}>"
        docs = _folder(base, label)
        sources = {name: f"{label}/{name}.yaml" for name in _FILES}
        origin = f"builtin:{ref}"
    else:
        path = Path(ref).expanduser()
        if path.is_dir():
            docs = _folder(path, str(path))
            sources = {name: str(path / f"{name}.yaml") for name in _FILES}
        elif path.is_file():
            doc = _read(path, str(path))
            if not isinstance(doc, Mapping):
                raise ConfigError(str(path), "<top>", "got no mapping, expected a profile")
            docs = {"matrix": doc.get("matrix"), "handling": doc.get("handling"),
                    "rules": {"profile": doc.get("profile"), "version": doc.get("version"),
                              "rules": doc.get("rules")}}  # fmt: skip
            sources = dict.fromkeys(_FILES, str(path))
        else:
            raise ConfigError(
                source, "profile",
                f"got {ref!r}, expected one of {', '.join(BUILTIN)} or an existing "
                "profile folder or file",
            )  # fmt: skip
        origin = str(path)
    rules_doc = docs["rules"]
    if not isinstance(rules_doc, Mapping):
        raise ConfigError(sources["rules"], "<top>", "got no mapping, expected rules: [...]")
    name = rules_doc.get("profile") or (ref if ref in BUILTIN else Path(ref).stem)
    version = rules_doc.get("version")
    if version is None or isinstance(version, bool | dict | list):
        raise ConfigError(sources["rules"], "version", f"got {version!r}, expected a string")
    return build_profile(
        name=str(name),
        version=str(version),
        matrix=docs["matrix"],
        handling=docs["handling"],
        rules=rules_doc,
        sources=sources,
        overrides=overrides,
        override_source=source,
        origin=origin,
    )


__all__ = ["BUILTIN", "load_profile"]
