"""Waiting in tests for what a hub does in the background (a delivery, a check, an edit)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def until(check: Callable[[], Any], timeout: float = 20.0, what: str = "the condition") -> Any:
    """What `check` returns once it is truthy, asked every 20 ms; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return found
