"""The catalog: exactly-once folding of host outboxes, filters, cursor pagination."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.catalog import Catalog, CursorError, Query
from hub.domains import SyncDomain
from hub.subscriptions import Published, decode_published, encode_published


def published(n: int, seq: int = 1, **entity: Any) -> Published:
    data = {"content": f"todo {n}", "status": "pending", "assignees": [], **entity}
    return Published(
        0,
        SyncDomain.TODOS,
        f"CHITTY-TODO-{n:04d}",
        "updated",
        seq,
        f"m{n}",
        "web",
        "node",
        entity.get("projectId"),
        entity.get("sessionId"),
        None,
        {"a": seq},
        ("content",),
        data,
        (),
        1000 + n,
        ({"conflictId": f"CHITTY-CONFLICT-{n}"},) if entity.get("conflicted") else (),
    )


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path / "catalog")


def test_publications_round_trip_through_the_outbox_encoding() -> None:
    item = published(1, projectId="CHITTY-PROJ-1", conflicted=True)
    assert decode_published(encode_published(item)) == item


def test_each_outbox_entry_is_taken_once(catalog: Catalog) -> None:
    assert catalog.take("h", [(1, published(1)), (2, published(2))]) == 2
    assert catalog.take("h", [(2, published(2, seq=9)), (3, published(3))]) == 3
    row = catalog.get(SyncDomain.TODOS, "CHITTY-TODO-0002")
    assert row is not None and row.seq == 1  # the re-sent entry 2 was skipped
    assert catalog.marks() == {"h": 3}


def test_a_newer_row_is_not_overwritten_by_an_older_change(catalog: Catalog) -> None:
    catalog.take("h1", [(1, published(1, seq=5, content="new"))])
    catalog.take("h2", [(1, published(1, seq=3, content="old"))])
    row = catalog.get(SyncDomain.TODOS, "CHITTY-TODO-0001")
    assert row is not None and row.entity["content"] == "new"


def test_filters_and_pagination(catalog: Catalog) -> None:
    items = [
        published(
            n,
            projectId="CHITTY-PROJ-1" if n % 2 else "CHITTY-PROJ-2",
            status="completed" if n % 3 == 0 else "pending",
            assignees=["CHITTY-USER-1"] if n % 5 == 0 else [],
        )
        for n in range(1, 31)
    ]
    catalog.take("h", list(enumerate(items, start=1)))
    odd = Query(SyncDomain.TODOS, project_id="CHITTY-PROJ-1", limit=4)
    seen: list[str] = []
    page = catalog.query(odd)
    while True:
        seen += [r.entity_id for r in page.rows]
        if page.cursor is None:
            break
        page = catalog.query(
            Query(SyncDomain.TODOS, project_id="CHITTY-PROJ-1", limit=4, cursor=page.cursor)
        )
    assert seen == [f"CHITTY-TODO-{n:04d}" for n in range(1, 31, 2)]
    done = catalog.query(Query(SyncDomain.TODOS, status="completed", limit=100))
    assert [r.entity_id for r in done.rows] == [f"CHITTY-TODO-{n:04d}" for n in range(3, 31, 3)]
    mine = catalog.query(Query(SyncDomain.TODOS, assignee="CHITTY-USER-1"))
    assert len(mine.rows) == 6 and mine.cursor is None
    assert catalog.query(Query(SyncDomain.SESSIONS)).rows == ()


def test_a_foreign_cursor_is_refused(catalog: Catalog) -> None:
    with pytest.raises(CursorError):
        catalog.query(Query(SyncDomain.TODOS, cursor="bm90LW91cnM="))
    with pytest.raises(CursorError):
        catalog.query(Query(SyncDomain.TODOS, cursor="***"))


def test_open_conflicts_are_listed_across_entities(catalog: Catalog) -> None:
    catalog.take(
        "h",
        [(1, published(1, conflicted=True)), (2, published(2)), (3, published(3, conflicted=True))],
    )
    assert [c["conflictId"] for c in catalog.conflicts()] == [
        "CHITTY-CONFLICT-1",
        "CHITTY-CONFLICT-3",
    ]


def test_what_take_remembers_of_rows_agrees_with_the_rows(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "c")
    catalog.take("h1", [(1, published(1, seq=5, content="five"))])
    unstorable = published(2)._replace(entity={"content": object()})
    with pytest.raises(TypeError):  # the whole take fails: nothing of it is stored
        catalog.take("h1", [(2, published(1, seq=9, content="nine")), (3, unstorable)])
    catalog.take("h2", [(1, published(1, seq=6, content="six"))])  # newer than what is stored
    row = catalog.get(SyncDomain.TODOS, "CHITTY-TODO-0001")
    assert row is not None and row.entity["content"] == "six"
    catalog.close()
    reopened = Catalog(tmp_path / "c")  # reads the row it replaces instead
    reopened.take("h3", [(1, published(1, seq=4, content="four"))])
    row = reopened.get(SyncDomain.TODOS, "CHITTY-TODO-0001")
    assert row is not None and row.entity["content"] == "six"


def test_the_catalog_survives_a_reopen(tmp_path: Path) -> None:
    first = Catalog(tmp_path / "c")
    first.take("h", [(1, published(1))])
    first.close()
    again = Catalog(tmp_path / "c")
    assert again.mark("h") == 1 and again.get(SyncDomain.TODOS, "CHITTY-TODO-0001") is not None


def session_change(sid: str, seq: int, project: str | None, kind: str = "updated") -> Published:
    data = {"sessionId": "s", "platform": "cli", "projectId": project}
    return Published(
        0,
        SyncDomain.SESSIONS,
        sid,
        kind,
        seq,
        f"{sid}-{seq}",
        "cli",
        "node",
        project,
        sid,
        None,
        {"a": seq},
        ("projectId",),
        data,
        (),
        1000 + seq,
    )


def test_a_session_that_names_a_project_notes_the_link_the_project_owes(
    catalog: Catalog, tmp_path: Path
) -> None:
    s1, s2 = "CHITTY-SESSION-1", "CHITTY-SESSION-2"
    catalog.take(
        "h",
        [
            (1, session_change(s1, 1, "CHITTY-PROJ-A", "created")),
            (2, session_change(s1, 2, "CHITTY-PROJ-A")),  # unchanged: owes nothing
            (3, session_change(s2, 1, None, "created")),  # no project: nothing
            (4, session_change(s1, 3, "CHITTY-PROJ-B")),  # moved
            (5, session_change(s1, 4, "CHITTY-PROJ-B", "deleted")),
        ],
    )
    noted = [(link.project, link.session, link.add) for link in catalog.links()]
    assert noted == [
        ("CHITTY-PROJ-A", s1, True),
        ("CHITTY-PROJ-A", s1, False),
        ("CHITTY-PROJ-B", s1, True),
        ("CHITTY-PROJ-B", s1, False),
    ]
    keys = [link.key for link in catalog.links()]
    assert len(set(keys)) == 4
    catalog.linked(keys[:2])
    catalog.close()
    reopened = Catalog(tmp_path / "catalog")  # notes are durable until done
    assert [link.key for link in reopened.links()] == keys[2:]
    reopened.take("h", [(6, session_change(s2, 2, "CHITTY-PROJ-A"))])
    noted = [(link.project, link.session) for link in reopened.links()]
    assert noted == [("CHITTY-PROJ-B", s1), ("CHITTY-PROJ-B", s1), ("CHITTY-PROJ-A", s2)]
    assert reopened.links()[-1].key not in keys  # a new note never reuses a settled one's key
    reopened.close()
    rebuilt = Catalog(tmp_path / "rebuilt")  # the same outbox gives the same notes, same keys
    rebuilt.take("h", [(1, session_change(s1, 1, "CHITTY-PROJ-A", "created"))])
    assert [link.key for link in rebuilt.links()] == keys[:1]
    rebuilt.close()


def test_a_session_lists_the_todos_made_in_it_and_listed_in_it(catalog: Catalog) -> None:
    a, b = "CHITTY-SESSION-A", "CHITTY-SESSION-B"
    catalog.take(
        "h",
        [
            (1, published(1, sessionId=a)),
            (2, published(2, sessionId=b, listedIn=[a])),
            (3, published(3, sessionId=a, mergedInto="CHITTY-TODO-0001")),
            (4, published(4, sessionId=b)),
        ],
    )

    def ids(**filters: Any) -> list[str]:
        return [r.entity_id for r in catalog.query(Query(SyncDomain.TODOS, **filters)).rows]

    assert ids(session_id=a) == ["CHITTY-TODO-0001", "CHITTY-TODO-0002"]
    assert ids(session_id=a, include_merged=True)[-1] == "CHITTY-TODO-0003"
    assert ids(sessions=(a, b)) == ["CHITTY-TODO-0001", "CHITTY-TODO-0002", "CHITTY-TODO-0004"]
    assert ids() == ["CHITTY-TODO-0001", "CHITTY-TODO-0002", "CHITTY-TODO-0004"]
