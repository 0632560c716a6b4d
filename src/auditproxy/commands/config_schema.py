"""`auditproxy config-schema`: print the JSON Schema of the config file.

Editors check a config file against it as it is typed (the YAML language server
reads ``# yaml-language-server: $schema=...`` at the top of the file); CI can
validate files with any JSON Schema validator. ``config/auditproxy.schema.json``
is this command's output.
"""

from __future__ import annotations

import argparse
import json
import sys

from auditproxy.settings import json_schema

EPILOG = """Save it beside your config and point the editor at it from the file's first line:
  auditproxy config-schema > auditproxy.schema.json
  # yaml-language-server: $schema=auditproxy.schema.json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(schema_text())
    return 0
