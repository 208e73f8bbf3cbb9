"""Hybrid logical clock timestamps: wall time plus a logical counter, node id as tie-break."""

from __future__ import annotations

from collections.abc import Callable

from hub.record import record


class ClockDriftError(ValueError):
    """A remote timestamp is further ahead of our physical clock than we accept."""


@record(order=True)
class HybridTimestamp:
    """Totally ordered by (wall_ms, logical, node): a happened-before respecting LWW stamp."""

    wall_ms: int
    logical: int
    node: str

    def tick(self, physical_ms: int, node: str) -> HybridTimestamp:
        """The next local timestamp after this one, at `physical_ms` on `node`."""
        if physical_ms > self.wall_ms:
            return HybridTimestamp(physical_ms, 0, node)
        return HybridTimestamp(self.wall_ms, self.logical + 1, node)

    def receive(self, remote: HybridTimestamp, physical_ms: int, node: str) -> HybridTimestamp:
        """The local timestamp after seeing `remote`: later than both and than `physical_ms`."""
        wall = max(self.wall_ms, remote.wall_ms, physical_ms)
        if wall == self.wall_ms == remote.wall_ms:
            logical = max(self.logical, remote.logical) + 1
        elif wall == self.wall_ms:
            logical = self.logical + 1
        elif wall == remote.wall_ms:
            logical = remote.logical + 1
        else:
            logical = 0
        return HybridTimestamp(wall, logical, node)

    def to_wire(self) -> tuple[int, int, str]:
        return (self.wall_ms, self.logical, self.node)

    @classmethod
    def from_wire(cls, value: tuple[int, int, str] | list[int | str]) -> HybridTimestamp:
        wall, logical, node = value
        return cls(int(wall), int(logical), str(node))


ZERO = HybridTimestamp(0, 0, "")


class HybridClock:
    """The stateful shell around `HybridTimestamp`: one per node, physical clock injected."""

    def __init__(
        self, node: str, physical_ms: Callable[[], int], max_drift_ms: int = 60_000
    ) -> None:
        self.node = node
        self._physical_ms = physical_ms
        self._max_drift_ms = max_drift_ms
        self._last = ZERO

    def now(self) -> HybridTimestamp:
        """A fresh timestamp, strictly after every one this clock issued or received."""
        self._last = self._last.tick(self._physical_ms(), self.node)
        return self._last

    def update(self, remote: HybridTimestamp) -> HybridTimestamp:
        """Merge a received timestamp; refuses one too far in the future."""
        physical = self._physical_ms()
        if remote.wall_ms - physical > self._max_drift_ms:
            raise ClockDriftError(
                f"timestamp from {remote.node!r} is {remote.wall_ms - physical} ms ahead of "
                f"this node's clock (limit {self._max_drift_ms} ms)"
            )
        self._last = self._last.receive(remote, physical, self.node)
        return self._last
