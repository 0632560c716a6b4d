"""Loading guideline profiles (YAML) into the core's Profile record.

PLACEHOLDER INTERFACE: the real loader replaces the body, keeping the signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditproxy.core.engine import Profile


def load_profile(
    ref: str = "digg",
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    source: str = "<config>",
) -> Profile:
    """Load the built-in profile ``ref`` or a profile folder at path ``ref``.

    ``overrides`` is the config's ``rules:`` mapping (rule id -> {severity, enabled,
    params}). Raises ConfigError naming ``source`` and the key on any mistake.
    """
    return Profile(name=ref, version="0")
