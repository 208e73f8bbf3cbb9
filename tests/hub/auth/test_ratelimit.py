"""Token buckets on an injected clock: burst, refill, waits, bounded memory; connection caps."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.auth.ratelimit import ConnectionLimiter, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_burst_then_wait_then_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=2, burst=5, now=clock)
    assert [limiter.take("alice") for _ in range(5)] == [0.0] * 5
    wait = limiter.take("alice")
    assert wait == pytest.approx(0.5)
    assert math.ceil(wait) == 1  # what Retry-After says
    assert limiter.take("bob") == 0.0  # keys are independent
    clock.t += 0.5
    assert limiter.take("alice") == 0.0
    assert limiter.take("alice") == pytest.approx(0.5)
    clock.t += 100
    assert [limiter.take("alice") for _ in range(6)][-2:] == [0.0, pytest.approx(0.5)]


def test_cost() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=1, burst=10, now=clock)
    assert limiter.take("k", cost=8) == 0.0
    assert limiter.take("k", cost=4) == pytest.approx(2.0)  # a refusal takes nothing
    assert limiter.take("k", cost=2) == 0.0
    with pytest.raises(ValueError, match=r"^cost:"):
        limiter.take("k", cost=11)
    with pytest.raises(ValueError, match=r"^cost:"):
        limiter.take("k", cost=0)


def test_clock_stepping_back_grants_nothing() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=1, burst=1, now=clock)
    assert limiter.take("k") == 0.0
    clock.t -= 50
    assert limiter.take("k") > 0
    clock.t += 50
    assert limiter.take("k") > 0  # the step back did not count as elapsed time


def test_memory_is_bounded_and_only_full_buckets_are_evicted() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=1, burst=2, now=clock, max_keys=3)
    for key in "abc":
        assert limiter.take(key) == 0.0
    assert limiter.take("d") == pytest.approx(1.0)  # a is half empty: d waits for it to refill
    assert len(limiter) == 3
    clock.t += 1
    assert limiter.take("d") == 0.0  # a (and b, c) are full again: evicted
    assert len(limiter) <= 3
    assert limiter.take("a") == 0.0


def test_constructor_checks() -> None:
    for kwargs, field in (
        ({"rate_per_s": 0, "burst": 1}, "rate_per_s"),
        ({"rate_per_s": 1, "burst": 0.5}, "burst"),
        ({"rate_per_s": 1, "burst": 1, "max_keys": 0}, "max_keys"),
    ):
        with pytest.raises(ValueError, match=rf"^{field}:"):
            RateLimiter(**kwargs)  # type: ignore[arg-type]


@given(
    rate=st.floats(min_value=0.1, max_value=20),
    burst=st.integers(min_value=1, max_value=5),
    max_keys=st.integers(min_value=1, max_value=3),
    steps=st.lists(
        st.tuples(
            st.one_of(st.just(0.0), st.floats(min_value=0, max_value=1)),
            st.integers(min_value=0, max_value=3),
        ),
        max_size=120,
    ),
)
def test_never_admits_more_than_burst_plus_rate_times_t(
    rate: float, burst: int, max_keys: int, steps: list[tuple[float, int]]
) -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=rate, burst=burst, now=clock, max_keys=max_keys)
    admitted: dict[int, list[float]] = {}
    for dt, key in steps:
        clock.t += dt
        if limiter.take(key) == 0.0:
            admitted.setdefault(key, []).append(clock.t)
    for times in admitted.values():
        for i, start in enumerate(times):
            for j in range(i, len(times)):
                count = j - i + 1
                assert count <= burst + rate * (times[j] - start) + 1e-6


def test_connection_limiter() -> None:
    limiter = ConnectionLimiter(max_per_key=2)
    assert limiter.acquire("a") and limiter.acquire("a")
    assert not limiter.acquire("a")
    assert limiter.acquire("b")
    assert limiter.open("a") == 2
    limiter.release("a")
    assert limiter.acquire("a")
    for _ in range(2):
        limiter.release("a")
    assert limiter.open("a") == 0
    with pytest.raises(ValueError, match=r"^key:"):
        limiter.release("a")
    with pytest.raises(ValueError, match=r"^max_per_key:"):
        ConnectionLimiter(0)
