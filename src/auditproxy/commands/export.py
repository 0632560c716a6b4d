"""`auditproxy export FILE... --har OUT`: JSON Lines recordings to one HAR 1.2 file.

Streams: a first pass keeps only (startedDateTime, file, offset) per line, the
second copies the lines in time order into the HAR document, so memory stays
small however large the recordings are. HAR inputs (other tools' files) are
merged too. The file is written beside OUT and renamed into place when complete.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from auditproxy import __version__
from auditproxy.core.har import HAR_VERSION
from auditproxy.recordings import Entry, read_recording


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSONL recordings (or HAR)")
    parser.add_argument("--har", required=True, metavar="OUT", help="the HAR file to write")


# (sort key, file index, byte offset, length) for JSONL lines; the entry itself for HAR
Ref = tuple[str, int, int, int, dict[str, Any] | None]


def _key(entry: dict[str, Any]) -> str:
    value = entry.get("startedDateTime")
    return value if isinstance(value, str) else ""


def run(args: argparse.Namespace) -> int:
    refs: list[Ref] = []
    errors = 0
    for index, path in enumerate(args.files):
        for item in read_recording(path):
            if isinstance(item, Entry):
                if not isinstance(item.entry.get("request"), dict):
                    errors += 1
                    print(f"auditproxy export: {item.source}: not a HAR entry (no request)",
                          file=sys.stderr)  # fmt: skip
                    continue
                streamable = item.offset >= 0 and not path.endswith(".gz")
                keep = None if streamable else item.entry
                refs.append((_key(item.entry), index, item.offset, item.length, keep))
            else:
                errors += item.fatal
                level = "" if item.fatal else "warning: "
                print(f"auditproxy export: {item.source}: {level}{item.message}", file=sys.stderr)
    # Time order; ties keep file and line order. ISO 8601 UTC strings sort as times.
    refs.sort(key=lambda r: (r[0], r[1], r[2]))
    tmp = f"{args.har}.tmp-{os.getpid()}"
    try:
        _write(tmp, args.files, refs)
        os.replace(tmp, args.har)
    except OSError as exc:
        print(f"auditproxy export: cannot write {args.har}: {exc.strerror or exc}",
              file=sys.stderr)  # fmt: skip
        if os.path.exists(tmp):
            os.remove(tmp)
        return 2
    print(f"auditproxy export: wrote {len(refs)} entries to {args.har}", file=sys.stderr)
    return 2 if errors else 0


def _write(tmp: str, files: list[str], refs: list[Ref]) -> None:
    creator = json.dumps({"name": "auditproxy", "version": __version__})
    handles: dict[int, Any] = {}
    try:
        with open(tmp, "w", encoding="utf-8") as out:
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
            out.flush()
            os.fsync(out.fileno())
    finally:
        for fh in handles.values():
            fh.close()
