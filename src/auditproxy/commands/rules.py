"""`auditproxy rules`: list the active rule catalog (id, severity, source, what it checks)."""

from __future__ import annotations

import argparse
import json
import sys

from auditproxy.core.catalog import catalog_as_dict, render_markdown, render_text
from auditproxy.offline import load_context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                        help="output format (default: text)")  # fmt: skip
    parser.add_argument("--config", metavar="F",
                        help="apply the profile: and rules: keys of this config file")  # fmt: skip
    parser.add_argument("--profile", metavar="REF",
                        help="built-in profile name or profile folder/file (default: digg, "
                        "or the config's profile:)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    # The same loader as `serve` and `audit`: a rules listing never disagrees with them.
    profile = load_context(args.config, args.profile).profile
    if args.format == "json":
        json.dump(catalog_as_dict(profile), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(profile))
    else:
        sys.stdout.write(render_text(profile))
    return 0
