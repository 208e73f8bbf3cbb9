"""A writer SIGKILLed at random points never loses an acked batch nor leaves part of one."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import pytest

from hub.store import LmdbStore
from tests.hub.store.store_processes import crash_batch

REPO_ROOT = Path(__file__).resolve().parents[3]
CHILD = [sys.executable, "-m", "tests.hub.store.store_processes"]
ROUNDS = 8


def run_and_kill(path: Path, first_batch: int, kill_after_s: float) -> list[int]:
    """Start the writer, SIGKILL it after `kill_after_s`; return the batches it acked."""
    child = subprocess.Popen(
        [*CHILD, "crash-writer", str(path), str(first_batch)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acked: list[int] = []

    def collect() -> None:
        assert child.stdout is not None
        acked.extend(int(line) for line in child.stdout)  # ends at EOF, when the child dies

    reader = threading.Thread(target=collect)
    reader.start()
    time.sleep(kill_after_s)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    reader.join(timeout=10)
    assert child.returncode == -signal.SIGKILL, "the writer died before it was killed"
    return acked


def present_batches(store: LmdbStore) -> dict[int, set[int]]:
    """Batch number -> event indexes found in the store."""
    found: dict[int, set[int]] = {}
    for entity_id in store.entity_ids():
        for event in store.events(entity_id):
            n, j, _ = msgpack.unpackb(event.body)
            found.setdefault(n, set()).add(j)
    return found


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigkill_never_loses_an_acked_batch_nor_shows_part_of_one(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    path = tmp_path / "store"
    next_batch = 0
    acked_total = 0
    for round_no in range(ROUNDS):
        acked = run_and_kill(path, next_batch, rng.uniform(0.05, 0.9))
        acked_total += len(acked)
        context = f"seed {seed}, round {round_no}, batches from {next_batch}"

        with LmdbStore(path) as store:
            report = store.verify()
            assert report.ok, f"{context}: {report.corruptions}"
            present = present_batches(store)
            assert sorted(present) == list(range(len(present))), f"{context}: holes"
            missing = [n for n in acked if n not in present]
            assert not missing, f"{context}: acked batches lost: {missing}"
            for n, indexes in present.items():
                expected = set(range(len(crash_batch(n))))
                assert indexes == expected, f"{context}: batch {n} is partial"
                assert store.dedupe_get(f"batch-{n}") == msgpack.packb(n), context
            assert store.dedupe_get(f"batch-{len(present)}") is None, context
        next_batch = len(present)

    assert acked_total > 0, f"seed {seed}: no round got as far as a commit"
