"""A gate that lets many transactions run at once but a memory-map resize run alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ResizeGate:
    """Shared/exclusive gate with writer preference, for transactions versus map resizes."""

    # LMDB requires that no transaction of this process is open while the map is resized
    # (py-lmdb invalidates any that are). Transactions enter `shared()`; a resizer calls
    # `want_exclusive()` (new transactions wait from then on, so busy readers can neither
    # starve the resize nor hold py-lmdb's internal lock against the aborting writer), leaves
    # its own `shared()` and enters `exclusive()`. Never nest `shared()` in one thread.

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._wanted = 0
        self._held = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold while a transaction is open."""
        with self._cond:
            while self._held or self._wanted:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                if self._active == 0:
                    self._cond.notify_all()

    def want_exclusive(self) -> None:
        """Announce an `exclusive()` to come: new `shared()` callers wait from now on."""
        with self._cond:
            self._wanted += 1

    def withdraw(self) -> None:
        """Cancel a `want_exclusive()` that will not be followed by `exclusive()`."""
        with self._cond:
            self._wanted -= 1
            self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold while resizing the map; call `want_exclusive()` first, outside `shared()`."""
        with self._cond:
            try:
                while self._held or self._active:
                    self._cond.wait()
            except BaseException:
                self._wanted -= 1
                self._cond.notify_all()
                raise
            self._held = True
        try:
            yield
        finally:
            with self._cond:
                self._held = False
                self._wanted -= 1
                self._cond.notify_all()
