"""`auditproxy check-config F`: validate a config file, print the effective config.

The effective config includes ``AUDITPROXY_*`` environment overrides and the
guideline profile is loaded, so a clean run here means ``serve`` accepts it.
Errors are one line naming file, key and value; the exit code is then 2.

After the config come the effective policies it compiles to, as YAML comments
(so the output still loads as a config file): the retry policy, per route, and
the rewrite rules in the order they run with the annotate mode.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from auditproxy.core.errors import ConfigError
from auditproxy.core.profile import Profile
from auditproxy.core.retry import KEYED_METHODS, RETRIED_ERROR_KINDS, RetryPolicy, compile_policy
from auditproxy.core.rewrite import RewriteRule, compile_rewrites
from auditproxy.profiles import load_profile
from auditproxy.settings import Settings, dump_yaml, format_duration, format_size, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="F", help="the YAML config file to check")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.file, env=os.environ)
        profile = load_profile(settings.profile, settings.rules, source=args.file)
        rewrites = compile_rewrites(settings.rewrite, profile, source=args.file)
    except ConfigError as exc:
        print(f"auditproxy: config error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(f"# effective configuration of {args.file}\n")
    sys.stdout.write(dump_yaml(settings))
    sys.stdout.write(_as_comment(retry_policy_text(settings, profile)))
    sys.stdout.write(_as_comment(rewrite_policy_text(settings, rewrites)))
    return 0


def _as_comment(text: str) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in text.splitlines())


# ---------------------------------------------------------------- retry


def retry_policy_text(settings: Settings, profile: Profile) -> str:
    """The effective retry policy (SPEC §10) of the top level and of each route
    with its own ``retry:``, as YAML."""
    policies = {"default": _retry_policy_dict(compile_policy(settings.retry, profile))}
    for route in settings.routes:
        if route.retry is not None:
            policies[f"route {route.prefix}"] = _retry_policy_dict(
                compile_policy(route.retry, profile)
            )
    head = f"retry policy (handling table of profile {profile.name} {profile.version}):\n"
    return head + yaml.safe_dump(policies, sort_keys=False, default_flow_style=None, width=96)


def _retry_policy_dict(p: RetryPolicy) -> dict[str, Any]:
    conditional = dict(sorted(p.conditional.items()))
    return {
        "enabled": p.enabled,
        "statuses": sorted(p.statuses),
        "conditional": conditional,
        "retry_404_routes": sorted(p.listed_routes),
        "upstream_errors": sorted(RETRIED_ERROR_KINDS),
        "methods": list(p.methods),
        "with_key": f"{', '.join(KEYED_METHODS)} carrying {p.idempotency_key_header}",
        "max_attempts": p.max_attempts,
        "backoff": {"base": format_duration(p.backoff_base),
                    "max": format_duration(p.backoff_max), "jitter": "full"},
        "retry_after": {"respect": p.respect_retry_after,
                        "max": format_duration(p.max_retry_after)},
        "per_try_timeout": format_duration(p.per_try_timeout),
        "deadline": format_duration(p.deadline),
        "max_buffered_body": format_size(p.max_buffered_body),
        "budget": {"percent": p.budget_percent, "min_per_second": p.budget_min_per_second,
                   "window": format_duration(p.budget_window)},
    }  # fmt: skip


# ---------------------------------------------------------------- rewrite and annotate

_ANNOTATE = {
    True: "true (X-Audit-Findings on every response with findings)",
    False: "false (no X-Audit-Findings)",
    "request": "request (X-Audit-Findings only for requests carrying X-Audit-Debug: 1)",
}


def rewrite_policy_text(settings: Settings, rules: Sequence[RewriteRule]) -> str:
    """The annotate mode and the rewrite rules (SPEC §11) in the order they run, as YAML."""
    listed: list[dict[str, Any]] = []
    for rule in rules:
        row: dict[str, Any] = {"rule": rule.name, "when": rule.match.describe() or "always",
                               "then": {rule.action.action: rule.action.describe()}}  # fmt: skip
        if rule.needs_body:
            row["body"] = "needed (skipped when the proxy did not hold all of it)"
        if rule.dry_run:
            row["dry_run"] = "evaluated and counted, not applied"
        listed.append(row)
    head = "rewrite policy (in order, on the head the client gets; classified is the upstream's):\n"
    annotate = yaml.safe_dump({"annotate": _ANNOTATE[settings.annotate]}, width=96)
    if not listed:
        return head + annotate + "rewrite: none\n"
    listing = {"rewrite": listed}
    return (
        head
        + annotate
        + yaml.safe_dump(listing, sort_keys=False, default_flow_style=None, width=96)
    )
