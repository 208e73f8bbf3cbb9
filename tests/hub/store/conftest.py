"""Fixtures for the checkpoint store tests: a settable clock and both store implementations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.store import CheckpointStore, LmdbStore, MemoryStore

START_MS = 1_700_000_000_000


@dataclass
class FakeClock:
    """A clock the test moves by hand."""

    now: int = START_MS

    def __call__(self) -> int:
        return self.now


StoreFactory = Callable[..., CheckpointStore]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "lmdb"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[StoreFactory]:
    """Builds the parametrized implementation; an LMDB store lives in a fresh tmp directory."""
    created: list[CheckpointStore] = []

    def make(**options: Any) -> CheckpointStore:
        store: CheckpointStore
        if request.param == "memory":
            store = MemoryStore(now_ms=clock, **options)
        else:
            store = LmdbStore(tmp_path / "store", now_ms=clock, **options)
        created.append(store)
        return store

    yield make
    for store in created:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> CheckpointStore:
    """A store keeping 2 snapshots per entity and dedupe entries for 1 s."""
    return make_store(snapshots_kept=2, dedupe_retention_ms=1000)
