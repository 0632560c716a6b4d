"""The timeline: exchanges per time bucket, bounded, merged exactly when widened."""

from __future__ import annotations

import itertools

from auditproxy.core.timeline import WIDTHS, Timeline

T0 = 1_700_000_000.0


def test_short_burst_in_tenth_of_a_second_buckets() -> None:
    """Exchanges within a second land in 10 ms buckets with their non-compliant counts."""
    tl = Timeline()
    for i, bad in enumerate([False, True, False, False, True]):
        tl.add(T0 + i * 0.25, bad)
    tl.add(0.0, True)  # unknown start time: not counted
    s = tl.series()
    assert s["bucket_seconds"] == 0.01
    assert (s["first"], s["last"]) == (T0, T0 + 1.0)
    assert [p[1:] for p in s["points"]] == [[1, 0], [1, 1], [1, 0], [1, 0], [1, 1]]
    assert s["points"][0][0] == T0


def test_buckets_stay_bounded_and_merge_exactly() -> None:
    """A long span widens the buckets; no exchange or non-compliant count is lost."""
    tl = Timeline(max_buckets=64)
    n = 20_000
    for i in range(n):
        tl.add(T0 + i * 3.7, i % 7 == 0)
    s = tl.series(max_points=10_000)
    assert len(s["points"]) <= 64
    assert s["bucket_seconds"] in WIDTHS
    assert sum(p[1] for p in s["points"]) == n
    assert sum(p[2] for p in s["points"]) == len(range(0, n, 7))
    assert (n - 1) * 3.7 / s["bucket_seconds"] < 64 * 2  # not wider than needed


def test_series_merges_to_at_most_max_points() -> None:
    """series() widens a copy to fit max_points; the timeline itself keeps its resolution."""
    tl = Timeline()
    for i in range(300):
        tl.add(T0 + i, False)
    wide = tl.series(max_points=30)
    assert wide["bucket_seconds"] == 10.0
    assert len(wide["points"]) == 30
    assert sum(p[1] for p in wide["points"]) == 300
    assert tl.series(max_points=1000)["bucket_seconds"] == 1.0
    assert Timeline().series()["points"] == []


def test_every_width_is_a_multiple_of_the_one_before() -> None:
    """Merging is exact only if each width divides the next."""
    for a, b in itertools.pairwise(WIDTHS):
        assert abs(b / a - round(b / a)) < 1e-9
