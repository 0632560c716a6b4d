"""`auditproxy export FILE... --har OUT`: JSON Lines recordings to one HAR 1.2 file.

Streams: a first pass keeps only (startedDateTime, file, offset) per line, the
second copies the lines in time order into the HAR document, so memory stays
small however large the recordings are. HAR inputs (other tools' files) are
merged too, redacted like our recordings. A directory stands for every recording
under it. OUT is written as ``auditproxy.outfile`` does: atomically onto a regular
file or a new path, through to a FIFO or device, ``-`` for standard output, never
over an input file.

Exit codes: 0 written, 2 unreadable input (the rest is still exported) or OUT
cannot be written.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from auditproxy import __version__
from auditproxy.core.har import HAR_VERSION
from auditproxy.core.har_redact import redact_entry
from auditproxy.core.redact import Redaction
from auditproxy.outfile import OutputError, open_output
from auditproxy.recordings import Entry, expand_inputs, read_recording

EPILOG = """\
OUT is replaced atomically when it is a regular file or does not exist; a FIFO or
a device (/dev/stdout) is written through; - is standard output; an input file is
never overwritten.

exit codes:
  0  OUT written
  2  unreadable input (named on stderr; the rest is still exported) or OUT cannot
     be written
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="JSONL recordings (or HAR); a directory stands for every "
                        "recording under it (recursively)")  # fmt: skip
    parser.add_argument("--har", required=True, metavar="OUT",
                        help="the HAR file to write (required; - for standard output)")  # fmt: skip


# (sort key, file index, byte offset, length) for JSONL lines; the entry itself for HAR
Ref = tuple[str, int, int, int, dict[str, Any] | None]


def _key(entry: dict[str, Any]) -> str:
    value = entry.get("startedDateTime")
    return value if isinstance(value, str) else ""


def run(args: argparse.Namespace) -> int:
    files, problems = expand_inputs(args.files)
    errors = 0
    for problem in problems:
        errors += problem.fatal
        _say(f"{problem.source}: {'' if problem.fatal else 'warning: '}{problem.message}")
    refs: list[Ref] = []
    redaction = Redaction.build()
    for index, path in enumerate(files):
        for item in read_recording(path):
            if isinstance(item, Entry):
                if not isinstance(item.entry.get("request"), dict):
                    errors += 1
                    _say(f"{item.source}: not a HAR entry (no request)")
                    continue
                streamable = item.offset >= 0 and not path.endswith(".gz")
                keep = None
                if item.offset < 0:  # another tool's HAR entry: redact like a recording
                    keep = redact_entry(item.entry, redaction)
                elif not streamable:
                    keep = item.entry
                refs.append((_key(item.entry), index, item.offset, item.length, keep))
            else:
                errors += item.fatal
                _say(f"{item.source}: {'' if item.fatal else 'warning: '}{item.message}")
    # Time order; ties keep file and line order. ISO 8601 UTC strings sort as times.
    refs.sort(key=lambda r: (r[0], r[1], r[2]))
    try:
        with open_output(args.har, files) as out:
            _write(out, files, refs)
    except OutputError as exc:
        _say(str(exc))
        return 2
    _say(f"wrote {len(refs)} entries to {args.har}")
    return 2 if errors else 0


def _say(message: str) -> None:
    print(f"auditproxy export: {message}", file=sys.stderr)


def _write(out: TextIO, files: list[str], refs: list[Ref]) -> None:
    creator = json.dumps({"name": "auditproxy", "version": __version__})
    handles: dict[int, Any] = {}
    try:
        out.write(f'{{"log": {{"version": "{HAR_VERSION}", "creator": {creator}, '
                  '"pages": [], "entries": [')  # fmt: skip
        for n, (_, index, offset, length, entry) in enumerate(refs):
            if entry is None:
                fh = handles.get(index)
                if fh is None:
                    fh = handles[index] = open(files[index], "rb")  # noqa: SIM115
                fh.seek(offset)
                line = fh.read(length).decode("utf-8").strip()
            else:
                line = json.dumps(entry, ensure_ascii=False)
            out.write(("\n" if n == 0 else ",\n") + line)
        out.write("\n]}}\n")
    finally:
        for fh in handles.values():
            fh.close()
