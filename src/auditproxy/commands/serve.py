"""`auditproxy serve` (PLACEHOLDER: not built yet)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("auditproxy serve is not built yet")
