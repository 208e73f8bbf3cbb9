"""Failing disks and concurrent processes: clear errors, consistent stores, readers keep reading."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hub.store import LmdbStore, NewEvent

REPO_ROOT = Path(__file__).resolve().parents[3]
CHILD = [sys.executable, "-m", "tests.hub.store.store_processes"]


def test_a_full_disk_fails_the_write_cleanly_and_keeps_committed_data(tmp_path: Path) -> None:
    with LmdbStore(tmp_path) as store:
        before = store.append_batch([NewEvent("big", 1, b"x" * 4000) for _ in range(100)])

    # The child caps its file size (RLIMIT_FSIZE) 256 KiB above the current data file.
    done = subprocess.run(
        [*CHILD, "fill-disk", str(tmp_path), str(256 * 1024)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(done.stdout)

    assert "write to checkpoint store at" in report["error"]
    assert str(tmp_path) in report["error"]
    assert "nothing of it was committed" in report["error"]
    assert "is the disk full?" in report["error"]
    assert report["committed"] > 100  # some batches fitted before the disk "filled up"
    assert report["last_seq_after_error"] == report["committed"]
    assert report["readable"] == report["committed"]
    assert report["verify_ok"]

    with LmdbStore(tmp_path) as store:  # reopened without the limit
        assert store.last_seq("big") == report["committed"]
        assert list(store.events("big", until_seq=100)) == before
        assert store.append_batch([NewEvent("big", 3, b"z")])[0].seq == report["committed"] + 1
        assert store.verify().ok


def test_reader_processes_read_while_a_writer_grows_the_map(tmp_path: Path) -> None:
    with LmdbStore(tmp_path, map_size=64 * 1024) as store:
        store.append_batch([NewEvent("log", 0, b"first")])
        readers = [
            subprocess.Popen(
                [*CHILD, "reader", str(tmp_path), str(64 * 1024)],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        try:
            for child in readers:
                assert child.stdout is not None
                assert child.stdout.readline().strip() == "ready"
            for n in range(300):
                store.append_batch([NewEvent("log", n, bytes(1000)) for _ in range(10)])
            store.append_batch([NewEvent("done", 0, b"")])
            final_map = store.map_size
            results = [json.loads(child.communicate(timeout=30)[0]) for child in readers]
        finally:
            for child in readers:
                if child.poll() is None:
                    child.kill()

    assert final_map >= 2 * 1024 * 1024
    for result in results:
        assert result["errors"] == []
        assert result["last"] == 3001
        assert result["reads"] > 10 and result["verifies"] > 0
        assert result["first_map"] == 64 * 1024
        assert result["final_map"] == final_map  # each reader adopted the grown map
