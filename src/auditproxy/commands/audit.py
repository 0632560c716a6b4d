"""`auditproxy audit FILE...`: re-audit recordings (our JSONL, HAR 1.2 from other tools).

Exit codes: 0 clean, 1 a finding at or above ``--fail-on`` (or, with
``--fail-on-uncovered KIND``, a part of the guideline tables the traffic never
exercised), 2 unreadable input (files or lines; each named on stderr with file and
line, the rest still audited). A torn last line is a warning only.
"""

from __future__ import annotations

import argparse
import sys

from auditproxy.audit_output import FAIL_ON, FORMATS, failing
from auditproxy.core.coverage import KINDS, uncovered
from auditproxy.offline import Audited, audit_entry, load_context, report_of
from auditproxy.progress import ProgressBar
from auditproxy.recordings import Entry, Progress, read_recording, total_size

_PROGRESS_MIN_BYTES = 4 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSONL recordings or HAR files")
    parser.add_argument("--config", metavar="F", help="take profile:, rules: and routes: from F")
    parser.add_argument("--profile", metavar="REF", help="built-in profile name or profile folder")
    parser.add_argument("--format", choices=list(FORMATS), default="text", help="output format")
    parser.add_argument("--fail-on", choices=list(FAIL_ON), default="must",
                        help="exit 1 when a finding at or above this severity exists "
                        "(default: must)")  # fmt: skip
    parser.add_argument("--fail-on-uncovered", action="append", choices=KINDS, default=[],
                        metavar="KIND", help="exit 1 when the traffic never exercised a listed "
                        "ARP.02 cell (matrix), a handling row not marked unused (handling) or an "
                        "enabled rule (rules); repeat for several")  # fmt: skip
    parser.add_argument("-o", "--output", metavar="OUT", help="write the report to OUT")
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def run(args: argparse.Namespace) -> int:
    ctx = load_context(args.config, args.profile)
    progress = Progress(total=total_size(args.files))
    show = not args.no_progress and progress.total >= _PROGRESS_MIN_BYTES
    bar = ProgressBar(sys.stderr, progress.total, enabled=show)
    results: list[Audited] = []
    errors = 0
    for path in args.files:
        for item in read_recording(path, progress):
            if isinstance(item, Entry):
                try:
                    results.append(audit_entry(ctx, item.source, item.entry))
                except (ValueError, KeyError, TypeError) as exc:
                    errors += 1
                    _say(bar, f"{item.source}: not a usable HAR entry: {exc}")
            elif item.fatal:
                errors += 1
                _say(bar, f"{item.source}: {item.message}")
            else:
                _say(bar, f"{item.source}: warning: {item.message}")
            bar.update(progress.done, f"{len(results)} exchanges")
    bar.clear()
    text = FORMATS[args.format](results, args.fail_on, ctx.profile)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            print(f"auditproxy audit: cannot write {args.output}: {exc.strerror or exc}",
                  file=sys.stderr)  # fmt: skip
            return 2
    else:
        sys.stdout.write(text)
    gaps = []
    if args.fail_on_uncovered:
        coverage = report_of(results, ctx.profile).as_dict()["coverage"]
        gaps = uncovered(coverage, args.fail_on_uncovered)
        for line in gaps:
            print(f"auditproxy audit: uncovered: {line}", file=sys.stderr)
    if errors:
        print(f"auditproxy audit: {errors} unreadable input(s); see above", file=sys.stderr)
        return 2
    if gaps or any(failing(f, args.fail_on) for r in results for f in r.findings):
        return 1
    return 0


def _say(bar: ProgressBar, message: str) -> None:
    bar.clear()
    print(f"auditproxy audit: {message}", file=sys.stderr)
