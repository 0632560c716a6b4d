"""`auditproxy rules`: list the active rule catalog (id, severity, source, what it checks)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from auditproxy.core.catalog import catalog_as_dict, render_markdown, render_text
from auditproxy.core.errors import ConfigError
from auditproxy.profiles import load_profile


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                        help="output format (default: text)")  # fmt: skip
    parser.add_argument("--config", metavar="F",
                        help="apply the profile: and rules: keys of this config file")  # fmt: skip
    parser.add_argument("--profile", metavar="REF",
                        help="built-in profile name or profile folder/file (default: digg, "
                        "or the config's profile:)")  # fmt: skip


def _config_keys(path: str) -> tuple[str | None, Mapping[str, Any] | None]:
    """The ``profile:`` and ``rules:`` keys of a config file (the rest is not read here)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, "<file>", f"cannot read: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(path, "<file>", f"invalid YAML: {exc}") from None
    if doc is None:
        return None, None
    if not isinstance(doc, Mapping):
        raise ConfigError(path, "<top>", f"got {type(doc).__name__}, expected a mapping")
    profile = doc.get("profile")
    if profile is not None and not isinstance(profile, str):
        raise ConfigError(path, "profile", f"got {profile!r}, expected a name or a path")
    rules = doc.get("rules")
    if rules is not None and not isinstance(rules, Mapping):
        raise ConfigError(path, "rules", f"got {rules!r}, expected a mapping of rule ids")
    if isinstance(profile, str) and profile not in ("digg",) and not Path(profile).is_absolute():
        # a relative profile path is relative to the config file
        candidate = Path(path).parent / profile
        if candidate.exists():
            profile = str(candidate)
    return profile, rules


def run(args: argparse.Namespace) -> int:
    ref, overrides, source = "digg", None, "<flags>"
    if args.config:
        cfg_profile, overrides = _config_keys(args.config)
        source = args.config
        if cfg_profile:
            ref = cfg_profile
    if args.profile:
        ref = args.profile
    profile = load_profile(ref, overrides, source=source)
    if args.format == "json":
        json.dump(catalog_as_dict(profile), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(profile))
    else:
        sys.stdout.write(render_text(profile))
    return 0
