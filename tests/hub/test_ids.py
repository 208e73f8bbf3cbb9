"""ChittyIDs: format, parsing errors, ordering and uniqueness across nodes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.ids import IdGenerator, InvalidChittyId, Kind, derived, parse


def test_generated_ids_parse_back_with_their_kind() -> None:
    gen = IdGenerator("node-a", now_ms=lambda: 1_700_000_000_000)
    for kind in Kind:
        text = gen.new(kind)
        assert text.startswith(f"CHITTY-{kind}-")
        assert parse(text).kind is kind
        assert str(parse(text)) == text


def test_ids_are_time_sortable_and_strictly_increasing_within_a_millisecond() -> None:
    now = [1_700_000_000_000]
    gen = IdGenerator("node-a", now_ms=lambda: now[0])
    ids = []
    for step in range(2000):
        if step % 500 == 0:
            now[0] += 1
        ids.append(gen.new(Kind.TODO))
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_clock_stepping_back_keeps_ids_monotonic() -> None:
    now = [1_700_000_000_500]
    gen = IdGenerator("n", now_ms=lambda: now[0])
    first = gen.new(Kind.MSG)
    now[0] -= 400
    assert gen.new(Kind.MSG) > first


def test_two_nodes_in_the_same_millisecond_with_the_same_randomness_never_collide() -> None:
    def fixed_random(bits: int) -> int:
        return 7

    a = IdGenerator("node-a", now_ms=lambda: 5, rand_bits=fixed_random)
    b = IdGenerator("node-b", now_ms=lambda: 5, rand_bits=fixed_random)
    ids_a = {a.new(Kind.TODO) for _ in range(100)}
    ids_b = {b.new(Kind.TODO) for _ in range(100)}
    assert not ids_a & ids_b


def test_later_milliseconds_sort_after_earlier_ones_across_nodes() -> None:
    early = IdGenerator("zzz", now_ms=lambda: 1000).new(Kind.TODO)
    late = IdGenerator("aaa", now_ms=lambda: 1001).new(Kind.TODO)
    assert early < late


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "not a ChittyID"),
        ("CHITTY-TODO-", "not a ChittyID"),
        ("chitty-TODO-123", "not a ChittyID"),
        ("CHITTY-todo-123", "not a ChittyID"),
        ("CHITTY-TODO-12 3", "not a ChittyID"),
        ("CHITTY-TODO-1-2", "not a ChittyID"),
        ("CHITTY-WIDGET-123", "unknown kind 'WIDGET'"),
        ("CHITTY-TODO-" + "A" * 65, "longer than 64"),
    ],
)
def test_parse_rejects_malformed_ids_saying_why(text: str, says: str) -> None:
    with pytest.raises(InvalidChittyId, match=says):
        parse(text)


def test_parse_checks_the_expected_kind() -> None:
    assert parse("CHITTY-PROJ-123", expect=Kind.PROJ).body == "123"
    with pytest.raises(InvalidChittyId, match="is a PROJ id, expected a TODO id"):
        parse("CHITTY-PROJ-123", expect=Kind.TODO)


def test_derived_ids_are_deterministic_and_well_formed() -> None:
    one = derived(Kind.CONFLICT, "CHITTY-TODO-1", "status")
    assert one == derived(Kind.CONFLICT, "CHITTY-TODO-1", "status")
    assert one != derived(Kind.CONFLICT, "CHITTY-TODO-1", "content")
    assert parse(one).kind is Kind.CONFLICT


@given(st.text(max_size=80))
def test_parse_accepts_or_rejects_but_never_crashes(text: str) -> None:
    try:
        parsed = parse(text)
    except InvalidChittyId:
        return
    assert str(parsed) == text
