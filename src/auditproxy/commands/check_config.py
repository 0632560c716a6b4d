"""`auditproxy check-config F`: validate a config file, print the effective config.

The effective config includes ``AUDITPROXY_*`` environment overrides and the
guideline profile is loaded, so a clean run here means ``serve`` accepts it.
Errors are one line naming file, key and value; the exit code is then 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from auditproxy.core.errors import ConfigError
from auditproxy.profiles import load_profile
from auditproxy.settings import dump_yaml, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="F", help="the YAML config file to check")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.file, env=os.environ)
        load_profile(settings.profile, settings.rules, source=args.file)
    except ConfigError as exc:
        print(f"auditproxy: config error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(f"# effective configuration of {args.file}\n")
    sys.stdout.write(dump_yaml(settings))
    return 0
