"""The resize gate: transactions share it, a resize waits for them and then runs alone."""

from __future__ import annotations

import threading
import time

import pytest

from hub.store.gate import ResizeGate


def started(target: object) -> threading.Thread:
    thread = threading.Thread(target=target)  # type: ignore[arg-type]
    thread.start()
    return thread


@pytest.mark.timeout(10)
def test_a_resize_waits_for_open_transactions_and_blocks_new_ones() -> None:
    gate = ResizeGate()
    log: list[str] = []
    release_reader = threading.Event()

    def reader() -> None:
        with gate.shared():
            log.append("reader in")
            release_reader.wait()
            log.append("reader out")

    def resizer() -> None:
        gate.want_exclusive()
        with gate.exclusive():
            log.append("resize")

    def late_reader() -> None:
        with gate.shared():
            log.append("late reader")

    first = started(reader)
    while "reader in" not in log:
        time.sleep(0.001)
    resize = started(resizer)
    time.sleep(0.05)
    late = started(late_reader)
    time.sleep(0.05)
    assert log == ["reader in"]  # the resize waits; the late reader waits behind it

    release_reader.set()
    for thread in (first, resize, late):
        thread.join()
    assert log == ["reader in", "reader out", "resize", "late reader"]


@pytest.mark.timeout(10)
def test_a_withdrawn_resize_lets_transactions_through_again() -> None:
    gate = ResizeGate()
    gate.want_exclusive()
    entered = threading.Event()

    def reader() -> None:
        with gate.shared():
            entered.set()

    thread = started(reader)
    assert not entered.wait(0.05)
    gate.withdraw()
    assert entered.wait(5)
    thread.join()
