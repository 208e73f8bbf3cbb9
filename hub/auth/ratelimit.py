"""Per-principal abuse limits: a token bucket per key, and a cap on open connections per key."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets: `burst` at once, refilled at `rate_per_s`; at most `max_keys` buckets."""

    # Buckets are kept in least-recently-used order. A full bucket is the same as no bucket,
    # so a new key evicts full buckets from the LRU end; when none is full the new key waits
    # (evicting a partly drained bucket would hand its key a fresh burst).

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        now: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if not rate_per_s > 0:
            raise ValueError(f"rate_per_s: must be positive, got {rate_per_s!r}")
        if not burst >= 1:
            raise ValueError(f"burst: must be >= 1, got {burst!r}")
        if max_keys < 1:
            raise ValueError(f"max_keys: must be >= 1, got {max_keys!r}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._now = now
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, bucket: _Bucket, now: float) -> float:
        return min(self.burst, bucket.tokens + max(0.0, now - bucket.at) * self.rate_per_s)

    def take(self, key: Hashable, cost: float = 1.0) -> float:
        """0.0 when `cost` tokens were taken, else the seconds until they would be there
        (nothing is taken then; the caller rounds up for `Retry-After`)."""
        if not 0 < cost <= self.burst:
            raise ValueError(f"cost: must be in (0, burst={self.burst:g}], got {cost!r}")
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            wait = self._make_room(now)
            if wait > 0:
                return wait
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            self._buckets.move_to_end(key)
        bucket.tokens, bucket.at = self._level(bucket, now), max(now, bucket.at)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate_per_s

    def _make_room(self, now: float) -> float:
        """Evict full buckets until a new one fits; else the seconds until one is full."""
        while len(self._buckets) >= self.max_keys:
            oldest_key, oldest = next(iter(self._buckets.items()))
            level = self._level(oldest, now)
            if level < self.burst:
                return max((self.burst - level) / self.rate_per_s, 1e-9)
            del self._buckets[oldest_key]
        return 0.0


class ConnectionLimiter:
    """At most `max_per_key` connections open per key at once."""

    def __init__(self, max_per_key: int) -> None:
        if max_per_key < 1:
            raise ValueError(f"max_per_key: must be >= 1, got {max_per_key!r}")
        self.max_per_key = max_per_key
        self._open: dict[Hashable, int] = {}

    def open(self, key: Hashable) -> int:
        """How many connections `key` holds now."""
        return self._open.get(key, 0)

    def acquire(self, key: Hashable) -> bool:
        """Take a connection slot; False (nothing taken) when `key` holds the maximum."""
        held = self._open.get(key, 0)
        if held >= self.max_per_key:
            return False
        self._open[key] = held + 1
        return True

    def release(self, key: Hashable) -> None:
        """Give back a slot taken by `acquire`; ValueError when `key` holds none."""
        held = self._open.get(key, 0)
        if held == 0:
            raise ValueError(f"key: {key!r} holds no connection to release")
        if held == 1:
            del self._open[key]
        else:
            self._open[key] = held - 1
