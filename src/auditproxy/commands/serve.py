"""`auditproxy serve`: the command line of the serving process (auditproxy.server)."""

from __future__ import annotations

import argparse
import os

from auditproxy import eventloop
from auditproxy.logconfig import configure_logging
from auditproxy.preflight import check_start
from auditproxy.server import loader_for, serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="F", help="YAML config file (env: AUDITPROXY_CONFIG)")
    parser.add_argument("--upstream", metavar="URL", help="upstream base URL")
    parser.add_argument("--listen", metavar="H:P", help="traffic address (default 0.0.0.0:8080)")
    parser.add_argument("--admin", metavar="H:P", help="admin address (default 127.0.0.1:9464)")
    parser.add_argument("--record", metavar="DIR", help="record exchanges as JSONL into DIR")
    parser.add_argument("--workers", metavar="N", type=_workers, default=1,
                        help="worker processes sharing the port (default 1)")  # fmt: skip


def _workers(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 256:
        raise argparse.ArgumentTypeError(f"got {value!r}, expected an integer from 1 to 256")
    return int(value)


def flags_of(args: argparse.Namespace) -> dict[str, object]:
    flags: dict[str, object] = {
        "upstream": getattr(args, "upstream", None),
        "listen": getattr(args, "listen", None),
        "admin": getattr(args, "admin", None),
    }
    record = getattr(args, "record", None)
    if record:
        flags["record.dir"] = record
        flags["record.enabled"] = True
    return flags


def run(args: argparse.Namespace) -> int:
    config = getattr(args, "config", None) or os.environ.get("AUDITPROXY_CONFIG") or None
    flags = flags_of(args)
    loader = loader_for(config, flags)
    settings = loader()
    configure_logging(settings.log.level, settings.log.format)
    check_start(settings, flags)  # unwritable --record DIR, busy --listen/--admin: exit 2
    if getattr(args, "workers", 1) > 1:
        from auditproxy.workers import run_workers

        return run_workers(settings, args.workers, config=config, flags=flags)
    eventloop.run(
        serve(settings, loader=loader), settings.event_loop, settings.config_file or "<config>"
    )
    return 0
