"""The JSONL recorder: lines, bodies, sampling, rotation, drops, errors and close()."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from auditproxy.core.engine import Profile
from auditproxy.sinks.metrics import Metrics
from auditproxy.sinks.recorder import Recorder
from tests.recording.factories import (
    MISSING_LOCATION,
    NEVER,
    RecordSettings,
    make_exchange,
    sample_value,
)


def recording_files(directory: str) -> list[Path]:
    return sorted(Path(directory).glob("auditproxy-*.jsonl"))


def read_lines(directory: str) -> list[dict[str, Any]]:
    out = []
    for path in recording_files(directory):
        for line in path.read_text("utf-8").splitlines():
            out.append(json.loads(line))
    return out


async def test_every_submitted_exchange_is_one_line(
    settings_for: Callable[..., RecordSettings], metrics: Metrics, profile: Profile
) -> None:
    """Each submitted exchange becomes exactly one JSON line with the SPEC §9 _audit fields."""
    settings = settings_for()
    rec = Recorder(settings, metrics, profile)
    await rec.start()
    for i in range(300):
        await rec.submit(make_exchange(request_id=f"r{i}"), (MISSING_LOCATION,), NEVER)
    await rec.close()
    lines = read_lines(settings.dir)
    assert [e["_audit"]["request_id"] for e in lines] == [f"r{i}" for i in range(300)]
    audit = lines[0]["_audit"]
    assert set(audit) >= {
        "request_id", "route", "origin", "compliant", "findings", "retry_advice",
        "attempts", "profile", "profile_version",
    }  # fmt: skip
    assert audit["compliant"] is False
    assert audit["findings"][0]["rule"] == "ARP.03.LOCATION-201"
    assert audit["profile"] == profile.name
    assert sample_value(metrics, "auditproxy_recorded_exchanges_total") == 300


async def test_bodies_are_capped_with_true_size_and_flag(
    settings_for: Callable[..., RecordSettings], metrics: Metrics, profile: Profile
) -> None:
    """A body over max_body is cut to max_body, keeps its true size and is flagged truncated."""
    settings = settings_for(max_body=10)
    rec = Recorder(settings, metrics, profile)
    await rec.start()
    body = b"abcdefghijklmnopqrstuvwxyz"
    ex = make_exchange(resp_body=body, resp_headers=(("Content-Type", "text/plain"),))
    await rec.submit(ex, (), NEVER)
    octets = (("Content-Type", "application/octet-stream"),)
    await rec.submit(make_exchange(resp_body=bytes(range(256)), resp_headers=octets), (), NEVER)
    await rec.close()
    text, binary = (e["response"]["content"] for e in read_lines(settings.dir))
    assert text["text"] == "abcdefghij"
    assert text["size"] == 26
    assert text["_truncated"] is True
    assert binary["encoding"] == "base64"
    assert base64.b64decode(binary["text"]) == bytes(range(10))
    assert binary["size"] == 256


async def test_sampling_keeps_noncompliant(
    settings_for: Callable[..., RecordSettings], metrics: Metrics, profile: Profile
) -> None:
    """sample: 0 records nothing compliant, but every non-compliant exchange is kept."""
    settings = settings_for(sample=0.0)
    rec = Recorder(settings, metrics, profile)
    await rec.start()
    for i in range(20):
        findings = (MISSING_LOCATION,) if i % 2 else ()
        await rec.submit(make_exchange(request_id=f"r{i}"), findings, NEVER)
    await rec.close()
    ids = [e["_audit"]["request_id"] for e in read_lines(settings.dir)]
    assert ids == [f"r{i}" for i in range(1, 20, 2)]
    assert sample_value(metrics, "auditproxy_recorder_dropped_total", {"reason": "queue_full"}) == 0


async def test_rotation_and_keep_files(
    settings_for: Callable[..., RecordSettings], metrics: Metrics, profile: Profile
) -> None:
    """Files rotate by size and only keep_files of them remain, the newest ones."""
    settings = settings_for(rotate_bytes=4000, keep_files=3)
    rec = Recorder(settings, metrics, profile)
    await rec.start()
    for i in range(60):
        await rec.submit(make_exchange(request_id=f"r{i:03d}"), (), NEVER)
        await asyncio.sleep(0)  # let the writer run so batches stay small
    await rec.close()
    files = recording_files(settings.dir)
    assert len(files) == 3
    assert all(f.stat().st_size <= 4000 for f in files)
    ids = [e["_audit"]["request_id"] for e in read_lines(settings.dir)]
    assert ids[-1] == "r059"
    assert ids == sorted(ids)
    assert len(ids) < 60  # the oldest files were removed


async def test_queue_full_drops_are_counted(
    settings_for: Callable[..., RecordSettings], metrics: Metrics, profile: Profile
) -> None:
    """With a tiny queue, lines written plus queue_full drops equal the exchanges submitted."""
    settings = settings_for(queue_size=2)
    rec = Recorder(settings, metrics, profile)
    await rec.start()
    for i in range(50):
        await rec.submit(make_exchange(request_id=f"r{i}"), (), NEVER)  # no yield: queue fills
    await rec.close()
    dropped = sample_value(metrics, "auditproxy_recorder_dropped_total", {"reason": "queue_full"})
    lines = read_lines(settings.dir)
    assert dropped > 0
    assert len(lines) + dropped == 50
    assert sample_value(metrics, "auditproxy_recorded_exchanges_total") == len(lines)


async def test_block_mode_loses_nothing(
    settings_for: Callable[..., RecordSettings], metrics: Metrics, profile: Profile
) -> None:
    """on_full: block waits for room instead of dropping."""
    settings = settings_for(queue_size=2, on_full="block")
    rec = Recorder(settings, metrics, profile)
    await rec.start()
    for i in range(50):
        await rec.submit(make_exchange(request_id=f"r{i}"), (), NEVER)
    await rec.close()
    assert len(read_lines(settings.dir)) == 50
    assert sample_value(metrics, "auditproxy_recorder_dropped_total", {"reason": "queue_full"}) == 0


async def test_unwritable_dir_counts_write_errors(
    tmp_path: Path, metrics: Metrics, profile: Profile
) -> None:
    """A directory that cannot be created makes writes fail quietly: counted, writable False."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    settings = RecordSettings(dir=str(blocker / "rec"))
    rec = Recorder(settings, metrics, profile)
    await rec.start()
    for i in range(5):
        await rec.submit(make_exchange(request_id=f"r{i}"), (), NEVER)
    await rec.close()
    assert rec.writable is False
    assert (
        sample_value(metrics, "auditproxy_recorder_dropped_total", {"reason": "write_error"}) == 5
    )
    assert sample_value(metrics, "auditproxy_recorded_exchanges_total") == 0


async def test_close_flushes_everything_queued(
    settings_for: Callable[..., RecordSettings], metrics: Metrics, profile: Profile
) -> None:
    """close() writes every exchange still in the queue before returning."""
    settings = settings_for(queue_size=5000)
    rec = Recorder(settings, metrics, profile)
    await rec.start()
    for i in range(2000):
        await rec.submit(make_exchange(request_id=f"r{i}"), (), NEVER)
    assert rec.queued > 0  # nothing has been written yet: the writer has not run
    await rec.close()
    assert len(read_lines(settings.dir)) == 2000
    assert rec.writable is True


async def test_disabled_recorder_writes_nothing(
    settings_for: Callable[..., RecordSettings], metrics: Metrics, profile: Profile
) -> None:
    """enabled: false creates no directory and no file."""
    settings = settings_for(enabled=False)
    rec = Recorder(settings, metrics, profile)
    await rec.start()
    await rec.submit(make_exchange(), (), NEVER)
    await rec.close()
    assert recording_files(settings.dir) == []
    assert "rec" not in os.listdir(os.path.dirname(settings.dir))
    assert rec.writable is True


async def test_a_faulted_writer_tries_again_at_most_once_per_interval(
    tmp_path: Path, metrics: Metrics, profile: Profile, monkeypatch: Any
) -> None:
    """A steady stream of exchanges into a directory that cannot be created: every
    one is dropped and counted, and the writer tries to open a file about once per
    retry interval, not once per batch."""
    blocker = tmp_path / "rec"
    blocker.write_text("in the way")
    attempts: list[float] = []
    real_makedirs = os.makedirs

    def counting_makedirs(path: str, *args: Any, **kwargs: Any) -> None:
        attempts.append(time.monotonic())
        real_makedirs(path, *args, **kwargs)

    monkeypatch.setattr("auditproxy.sinks.recorder.os.makedirs", counting_makedirs)
    rec = Recorder(RecordSettings(dir=str(blocker)), metrics, profile, retry_seconds=0.25)
    await rec.start()
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 1.0:
        await rec.submit(make_exchange(request_id=f"r{n}"), (), NEVER)
        n += 1
        await asyncio.sleep(0.005)  # one batch each
    await rec.close()
    assert rec.fault == "File exists"
    assert (
        sample_value(metrics, "auditproxy_recorder_dropped_total", {"reason": "write_error"}) == n
    )
    assert n > 50
    assert 2 <= len(attempts) <= 1.0 / 0.25 + 2, len(attempts)
