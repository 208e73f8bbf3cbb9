"""Logical clocks: vector clocks for causality, hybrid logical clocks for last-writer-wins."""

from hub.clocks.hlc import ClockDriftError, HybridClock, HybridTimestamp
from hub.clocks.vector import Ordering, VectorClock

__all__ = ["ClockDriftError", "HybridClock", "HybridTimestamp", "Ordering", "VectorClock"]
