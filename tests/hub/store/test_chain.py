"""Checksum chaining and the chain walk, as pure functions."""

from __future__ import annotations

import pytest

from hub.store import GENESIS_CHECKSUM, CorruptionKind, CorruptValueError, NewEvent, StoredEvent
from hub.store.chain import GENESIS, ChainHead, plan_batch, verify_chain


def chain(entity_id: str, count: int) -> list[StoredEvent]:
    return plan_batch(
        [NewEvent(entity_id, t, f"{t}".encode()) for t in range(count)], lambda _, __: GENESIS
    ).events


def entries(events: list[StoredEvent]) -> list[tuple[int, StoredEvent | CorruptValueError]]:
    return [(event.seq, event) for event in events]


def test_a_healthy_chain_has_no_findings() -> None:
    assert verify_chain("a", entries(chain("a", 20))) == []
    assert verify_chain("a", []) == []


def test_the_checksum_covers_every_field() -> None:
    (base,) = chain("a", 1)
    variants = [
        plan_batch([NewEvent("b", 0, b"0")], lambda _, __: GENESIS).events[0],
        plan_batch([NewEvent("a", 1, b"0")], lambda _, __: GENESIS).events[0],
        plan_batch([NewEvent("a", 0, b"1")], lambda _, __: GENESIS).events[0],
        plan_batch(
            [NewEvent("a", 0, b"0")], lambda _, __: ChainHead(1, GENESIS_CHECKSUM, 0)
        ).events[0],
        plan_batch([NewEvent("a", 0, b"0")], lambda _, __: ChainHead(0, b"\x01" * 32, -1)).events[
            0
        ],
    ]
    assert len({base.checksum, *(v.checksum for v in variants)}) == 6


def test_a_plan_continues_from_the_head_it_is_given() -> None:
    first = chain("a", 3)
    last = first[-1]
    plan = plan_batch(
        [NewEvent("a", 5, b"3"), NewEvent("a", 6, b"4")],
        lambda _, __: ChainHead(last.seq, last.checksum, last.timestamp_ms),
    )
    assert [e.seq for e in plan.events] == [4, 5]
    assert verify_chain("a", entries(first + plan.events)) == []
    assert plan.heads == {"a": plan.events[-1]}
    assert plan.prefixes == {"a": b"a\x00"}


def test_known_heads_are_used_before_asking() -> None:
    asked: list[str] = []

    def head_of(entity_id: str, prefix: bytes) -> ChainHead:
        asked.append(entity_id)
        return GENESIS

    known = {"a": ChainHead(7, b"\x02" * 32, 50)}
    plan = plan_batch([NewEvent("a", 50, b""), NewEvent("b", 1, b"")], head_of, known)
    assert [(e.entity_id, e.seq) for e in plan.events] == [("a", 8), ("b", 1)]
    assert asked == ["b"]


def test_each_finding_names_one_seq() -> None:
    events = chain("a", 8)
    damaged: list[tuple[int, StoredEvent | CorruptValueError]] = []
    for event in events:
        if event.seq == 2:
            event = StoredEvent("a", 2, event.timestamp_ms, b"tampered", event.checksum)
        if event.seq == 4:
            continue  # missing
        if event.seq == 6:
            damaged.append((6, CorruptValueError("events: undecodable")))
            continue
        damaged.append((event.seq, event))

    found = [(c.kind, c.seq) for c in verify_chain("a", damaged)]
    assert found == [
        (CorruptionKind.BAD_CHECKSUM, 2),
        (CorruptionKind.GAP, 4),
        (CorruptionKind.UNDECODABLE, 6),
    ]


@pytest.mark.parametrize("first_seq", [2, 5])
def test_a_log_that_does_not_start_at_one_has_a_gap(first_seq: int) -> None:
    events = chain("a", 6)[first_seq - 1 :]
    found = verify_chain("a", entries(events))
    assert [(c.kind, c.seq) for c in found] == [(CorruptionKind.GAP, 1)]
