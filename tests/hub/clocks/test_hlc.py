"""Hybrid logical clocks: monotonic under a stuck or stepped-back wall clock, drift refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.clocks import ClockDriftError, HybridClock, HybridTimestamp


def test_now_is_strictly_increasing_even_when_the_wall_clock_stands_still_or_steps_back() -> None:
    wall = [1000]
    clock = HybridClock("a", physical_ms=lambda: wall[0])
    stamps = [clock.now() for _ in range(3)]
    wall[0] = 900
    stamps += [clock.now() for _ in range(3)]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    assert all(stamp.wall_ms == 1000 for stamp in stamps)


def test_update_moves_past_a_remote_timestamp() -> None:
    clock = HybridClock("a", physical_ms=lambda: 1000)
    remote = HybridTimestamp(1500, 4, "b")
    local = clock.update(remote)
    assert local > remote
    assert clock.now() > local


def test_update_refuses_a_timestamp_too_far_ahead() -> None:
    clock = HybridClock("a", physical_ms=lambda: 1000, max_drift_ms=100)
    with pytest.raises(ClockDriftError, match="ahead"):
        clock.update(HybridTimestamp(2000, 0, "b"))


def test_node_breaks_ties() -> None:
    assert HybridTimestamp(5, 0, "a") < HybridTimestamp(5, 0, "b")


def test_wire_round_trip() -> None:
    stamp = HybridTimestamp(5, 2, "n")
    assert HybridTimestamp.from_wire(stamp.to_wire()) == stamp


stamps = st.builds(
    HybridTimestamp, st.integers(0, 50), st.integers(0, 5), st.sampled_from(["a", "b"])
)


@given(stamps, stamps, st.integers(0, 60))
def test_receive_is_after_both_inputs(
    local: HybridTimestamp, remote: HybridTimestamp, now: int
) -> None:
    after = local.receive(remote, now, "a")
    assert after > local
    assert (after.wall_ms, after.logical) > (remote.wall_ms, remote.logical)
    assert after.wall_ms >= now
