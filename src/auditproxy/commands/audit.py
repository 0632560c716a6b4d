"""`auditproxy audit FILE...`: re-audit recordings (our JSONL, HAR 1.2 from other tools).

Exit codes: 0 clean, 1 a finding at or above ``--fail-on``, 2 unreadable input
(files or lines; each named on stderr with file and line, the rest still audited)
or no exchanges at all (unless ``--allow-empty``). A torn last line is a warning
only. With ``--fail-on-uncovered KIND``, exit 1 also when the traffic never
exercised a part of the guideline tables of that kind. A directory stands for
every recording under it. Entries of other tools' HAR files are redacted like
our recordings before anything is printed, and an entry with status 0 (a
browser's failed or cancelled request) is skipped and counted.
"""

from __future__ import annotations

import argparse
import sys

from auditproxy.audit_output import FAIL_ON, FORMATS, failing
from auditproxy.core.coverage import KINDS, uncovered
from auditproxy.core.har_redact import redact_entry
from auditproxy.offline import Audited, audit_entry, load_context, report_of
from auditproxy.outfile import OutputError, open_output, refuse_inputs
from auditproxy.progress import ProgressBar
from auditproxy.recordings import Entry, Progress, expand_inputs, read_recording, total_size

_PROGRESS_MIN_BYTES = 4 * 1024 * 1024


EPILOG = """\
exit codes:
  0  no finding at or above --fail-on
  1  a finding at or above --fail-on
  2  unreadable input (named on stderr; the rest is still audited), no exchanges
     at all (without --allow-empty), a bad --config, or OUT cannot be written
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="JSONL recordings or HAR files; a directory stands for every "
                        "recording under it (recursively, in time order)")  # fmt: skip
    parser.add_argument("--config", metavar="F",
                        help="take profile:, rules:, routes: and record.redact_* from F "
                        "(default: the built-in defaults)")  # fmt: skip
    parser.add_argument("--profile", metavar="REF",
                        help="built-in profile name or profile folder (default: digg, "
                        "or the config's profile:)")  # fmt: skip
    parser.add_argument("--format", choices=list(FORMATS), default="text",
                        help="output format (default: text)")  # fmt: skip
    parser.add_argument("--fail-on", choices=list(FAIL_ON), default="must",
                        help="exit 1 when a finding at or above this severity exists "
                        "(default: must)")  # fmt: skip
    parser.add_argument("--fail-on-uncovered", action="append", choices=KINDS, default=[],
                        metavar="KIND", help="exit 1 when the traffic never exercised a listed "
                        "ARP.02 cell (matrix), a handling row not marked unused (handling) or an "
                        "enabled rule (rules); repeat for several")  # fmt: skip
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        default="-",
        help="write the report to OUT (default: -, standard output)",
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="exit 0 when the input holds no exchanges (default: exit 2)",
    )
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def run(args: argparse.Namespace) -> int:
    ctx = load_context(args.config, args.profile)
    files, problems = expand_inputs(args.files)
    try:
        refuse_inputs(args.output, files)
    except OutputError as exc:
        print(f"auditproxy audit: {exc}", file=sys.stderr)
        return 2
    progress = Progress(total=total_size(files))
    show = not args.no_progress and progress.total >= _PROGRESS_MIN_BYTES
    bar = ProgressBar(sys.stderr, progress.total, enabled=show)
    results: list[Audited] = []
    errors = sum(p.fatal for p in problems)
    for problem in problems:
        _say(bar, f"{problem.source}: {'' if problem.fatal else 'warning: '}{problem.message}")
    no_response = 0
    for path in files:
        for item in read_recording(path, progress):
            if isinstance(item, Entry):
                entry = item.entry
                if _status(entry) == 0:
                    no_response += 1
                    continue
                if item.offset < 0:  # another tool's HAR: nothing of it is redacted yet
                    entry = redact_entry(entry, ctx.redaction)
                try:
                    results.append(audit_entry(ctx, item.source, entry))
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
    if no_response:
        _say(None, f"skipped {no_response} entries with status 0 (the client got no response: "
             "blocked, cancelled or failed requests)")  # fmt: skip
    text = FORMATS[args.format](results, args.fail_on, ctx.profile)
    try:
        with open_output(args.output, files) as out:
            out.write(text)
    except OutputError as exc:
        _say(None, str(exc))
        return 2
    gaps = []
    if args.fail_on_uncovered:
        coverage = report_of(results, ctx.profile).as_dict()["coverage"]
        gaps = uncovered(coverage, args.fail_on_uncovered)
        for line in gaps:
            _say(None, f"uncovered: {line}")
    if errors:
        _say(None, f"{errors} unreadable input(s); see above")
        return 2
    if not results and not args.allow_empty:
        _say(None, f"no exchanges to audit in {' '.join(args.files)}; an empty recording "
             "cannot pass a gate (use --allow-empty to accept it)")  # fmt: skip
        return 2
    if gaps or any(failing(f, args.fail_on) for r in results for f in r.findings):
        return 1
    return 0


def _status(entry: dict[str, object]) -> object:
    response = entry.get("response")
    return response.get("status") if isinstance(response, dict) else None


def _say(bar: ProgressBar | None, message: str) -> None:
    if bar is not None:
        bar.clear()
    print(f"auditproxy audit: {message}", file=sys.stderr)
