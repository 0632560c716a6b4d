"""The ``auditproxy`` command (SPEC §3): argument parsing only, no logic.

Each subcommand lives in ``auditproxy.commands.<name>`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported
lazily so ``auditproxy --help`` and quick commands stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Protocol

from auditproxy import __version__
from auditproxy.core.errors import ConfigError


class Command(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


# name -> (module, one-line help). The order is the order in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "run the auditing reverse proxy"),
    "demo": ("demo", "run a sample API behind the proxy, drive traffic, print a report"),
    "audit": ("audit", "audit recordings (JSONL or HAR) offline"),
    "replay": ("replay", "re-send recorded requests to a target"),
    "export": ("export", "convert JSONL recordings to one HAR 1.2 file"),
    "rules": ("rules", "list the active rule catalog"),
    "check-config": ("check_config", "validate a config file and print the effective config"),
    "config-schema": ("config_schema", "print the JSON Schema of the config file (for editors)"),
}


def _load(module: str) -> Command:
    mod: Command = importlib.import_module(f"auditproxy.commands.{module}")
    return mod


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditproxy",
        description="A recording reverse proxy that audits live REST API traffic "
        "against API guidelines and exports Prometheus metrics.",
    )
    parser.add_argument("--version", action="version", version=f"auditproxy {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show Python tracebacks on unexpected errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show Python tracebacks on unexpected errors")  # fmt: skip
        _load(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _load(args._module).run(args)
    except ConfigError as exc:
        print(f"auditproxy: config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`auditproxy rules | head`): stop quietly, like cat.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:
        if getattr(args, "debug", False):
            raise
        print(f"auditproxy: error: {type(exc).__name__}: {exc} (run with --debug for a traceback)",
              file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
