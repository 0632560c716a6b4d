"""Readers: JSONL lines with line numbers, torn last lines, HAR documents."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from auditproxy.recordings import Entry, Problem, read_recording
from tests.recording.factories import DATA


def good(i: int) -> str:
    return json.dumps({"request": {"method": "GET", "url": f"http://a/{i}"},
                       "response": {"status": 200}})  # fmt: skip


def test_torn_last_line_is_a_warning(tmp_path: Path) -> None:
    """A last line cut mid-write is skipped with a non-fatal problem."""
    p = tmp_path / "r.jsonl"
    p.write_text(good(1) + "\n" + good(2) + "\n" + good(3)[:20])
    items = list(read_recording(str(p)))
    assert [i.source for i in items if isinstance(i, Entry)] == [f"{p}:1", f"{p}:2"]
    (problem,) = [i for i in items if isinstance(i, Problem)]
    assert problem.fatal is False
    assert problem.source == f"{p}:3"


def test_malformed_middle_line_is_an_error_with_line_number(tmp_path: Path) -> None:
    """A bad line in the middle is a fatal problem naming its line; later lines are read."""
    p = tmp_path / "r.jsonl"
    p.write_text(good(1) + "\n{oops\n" + good(3) + "\n[1, 2]\n")
    items = list(read_recording(str(p)))
    problems = [i for i in items if isinstance(i, Problem)]
    assert [(i.source, i.fatal) for i in problems] == [(f"{p}:2", True), (f"{p}:4", True)]
    assert [i.source for i in items if isinstance(i, Entry)] == [f"{p}:1", f"{p}:3"]


def test_gzip_jsonl_is_read(tmp_path: Path) -> None:
    """A gzip-compressed recording reads like the plain one."""
    p = tmp_path / "r.jsonl.gz"
    with gzip.open(p, "wt") as fh:
        fh.write(good(1) + "\n" + good(2) + "\n")
    assert len([i for i in read_recording(str(p)) if isinstance(i, Entry)]) == 2


def test_har_entries_are_indexed(tmp_path: Path) -> None:
    """A HAR file yields its entries as file#index."""
    items = list(read_recording(str(DATA / "mitmproxy.har")))
    assert all(isinstance(i, Entry) for i in items)
    assert items[3].source.endswith("mitmproxy.har#3")


def test_broken_har_names_the_line(tmp_path: Path) -> None:
    """A HAR document that is not valid JSON is one error naming the line."""
    p = tmp_path / "bad.har"
    p.write_text('{\n  "log": {\n    "entries": [,]\n  }\n}\n')
    (problem,) = list(read_recording(str(p)))
    assert isinstance(problem, Problem)
    assert problem.source == f"{p}:3"


def test_missing_file_is_a_problem(tmp_path: Path) -> None:
    """An unreadable path is reported, not raised."""
    (problem,) = list(read_recording(str(tmp_path / "nope.jsonl")))
    assert isinstance(problem, Problem)
    assert "cannot read" in problem.message


def test_single_torn_line_is_still_jsonl(tmp_path: Path) -> None:
    """A file holding only a torn line is read as JSONL: one warning, no error."""
    p = tmp_path / "r.jsonl"
    p.write_text('{"startedDateTime": "2024-06-0')
    (problem,) = list(read_recording(str(p)))
    assert isinstance(problem, Problem)
    assert problem.fatal is False
