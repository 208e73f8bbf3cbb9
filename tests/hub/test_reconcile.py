"""Todo reconciliation: spec Example 2, duplicates, dependency graph, cycles and merge laws."""

from __future__ import annotations

import itertools
import pickle
import random
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hub.ids import IdGenerator, Kind
from hub.models.todo import Priority, Todo, TodoMetadata, TodoStatus
from hub.reconcile import (
    STATUS_RANK,
    DependencyCycle,
    MeshTodo,
    MixedProjects,
    TodoMesh,
    content_key,
    normalize_content,
    reconcile,
    write_back,
    written,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
NewId = Callable[[Kind], str]


def id_factory(node: str) -> NewId:
    """Deterministic, strictly increasing ChittyIDs (a fake clock one millisecond per id)."""
    generator = IdGenerator(node, now_ms=itertools.count(1_740_000_000_000).__next__)
    return generator.new


@pytest.fixture
def new_id() -> NewId:
    return id_factory("test-node")


def at(minutes: int | None) -> datetime | None:
    return None if minutes is None else T0 + timedelta(minutes=minutes)


def make_todo(
    todo_id: str,
    content: str,
    session: str,
    status: TodoStatus = TodoStatus.PENDING,
    *,
    created: int | None = 0,
    deps: Sequence[str] = (),
    completed: int | None = None,
    project: str | None = None,
    assignees: Sequence[str] = (),
    priority: Priority = Priority.MEDIUM,
    modified: int | None = None,
    deadline: int | None = None,
) -> Todo:
    return Todo(
        chitty_id=todo_id,
        content=content,
        session_id=session,
        status=status,
        project_id=project,
        assignees=list(assignees),
        dependencies=list(deps),
        deadline=at(deadline),
        metadata=TodoMetadata(
            created=at(created),
            modified=at(modified),
            completed_at=at(completed),
            priority=priority,
        ),
    )


def position(mesh: TodoMesh) -> dict[str, int]:
    return {item.chitty_id: index for index, item in enumerate(mesh.todos)}


# --- spec Example 2 -------------------------------------------------------------------------------


def test_spec_example_2_three_sessions_reconcile_to_five_todos(new_id: NewId) -> None:
    project = new_id(Kind.PROJ)
    a, b, c = (new_id(Kind.SESSION) for _ in range(3))
    t1, t2a, t2b, t3, t4, t5 = (new_id(Kind.TODO) for _ in range(6))
    session_a = [
        make_todo(t1, "Design the todo mesh schema", a, created=0, project=project),
        make_todo(
            t2a,
            "Write the reconciliation tests",
            a,
            TodoStatus.IN_PROGRESS,
            created=1,
            project=project,
        ),
    ]
    session_b = [
        make_todo(
            t2b,
            "  write the RECONCILIATION   tests!!",
            b,
            TodoStatus.COMPLETED,
            created=2,
            completed=30,
            project=project,
        ),
        make_todo(t3, "Document the sync CLI", b, created=3, project=project),
    ]
    session_c = [
        make_todo(
            t4, "Wire the WebSocket gateway", c, TodoStatus.IN_PROGRESS, created=4, project=project
        ),
        make_todo(t5, "Add Prometheus metrics", c, created=5, project=project),
    ]

    mesh = reconcile([*session_c, *session_b, *session_a])

    assert [item.chitty_id for item in mesh.todos] == [t1, t2a, t3, t4, t5]
    todo2 = mesh.todos[1]
    assert todo2.todo.content == "Write the reconciliation tests"
    assert todo2.todo.status is TodoStatus.COMPLETED
    assert todo2.todo.metadata.completed_at == at(30)
    assert set(todo2.origin_sessions) == {a, b}
    assert todo2.merged_ids == tuple(sorted((t2a, t2b)))
    assert mesh.find(t2b) is todo2
    expected = {t1: (TodoStatus.PENDING, a), t3: (TodoStatus.PENDING, b)}
    expected |= {t4: (TodoStatus.IN_PROGRESS, c), t5: (TodoStatus.PENDING, c)}
    for todo_id, (status, session) in expected.items():
        item = mesh.find(todo_id)
        assert item is not None
        assert item.todo.status is status
        assert item.origin_sessions == (session,)
        assert item.merged_ids == (todo_id,)
    assert all(item.todo.project_id == project for item in mesh.todos)
    assert (mesh.edges, mesh.blocked, dict(mesh.missing_dependencies)) == ((), (), {})


# --- content_key ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        "Write tests.",
        "  write   TESTS",
        "write tests!!",
        "Write\ttests\n",
        "WRITE TESTS ?!…",
        "write\u00a0tests",  # no-break space
        "".join(chr(ord(c) + 0xFEE0) if c != " " else c for c in "Write tests!"),  # fullwidth
        "write tests 。",  # ideographic full stop
    ],
)
def test_content_key_ignores_case_whitespace_and_trailing_punctuation(variant: str) -> None:
    assert content_key(variant) == content_key("write tests")
    assert normalize_content(variant) == "write tests"


def test_content_key_is_a_sha256_hex_digest() -> None:
    key = content_key("Write tests")
    assert len(key) == 64
    assert int(key, 16) >= 0


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Learn C#", "Learn C"),  # '#' and '%' carry meaning at the end of a word
        ("Cover 90%", "Cover 90"),
        ("fix a.b", "fix ab"),  # only trailing punctuation is ignored
        ("write tests", "writetests"),  # whitespace runs collapse, they do not vanish
        ("write tests", "write test"),
    ],
)
def test_content_key_keeps_meaningful_differences(one: str, other: str) -> None:
    assert content_key(one) != content_key(other)


def test_content_key_is_unicode_caseless() -> None:
    assert content_key("STRASSE") == content_key("straße")
    assert content_key("Café") == content_key("CAFE\u0301")  # composed vs decomposed é


words = st.lists(
    st.text(st.characters(exclude_categories=["Zs", "Zl", "Zp", "Cc"]), min_size=1),
    min_size=1,
    max_size=5,
)
whitespace = st.text(st.sampled_from(" \t\n\u00a0\u2003\u3000"), min_size=1, max_size=3)


def _trailing(char: str) -> bool:
    """Punctuation that stays punctuation under NFKC and is not '#' or '%' (nor an NFKC twin)."""
    folded = unicodedata.normalize("NFKC", char)
    return all(unicodedata.category(c).startswith("P") and c not in "#%" for c in folded)


punctuation = st.text(
    st.characters(categories=["Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"]).filter(_trailing)
    | st.sampled_from(" \t"),
    max_size=4,
)


@given(st.text())
def test_normalize_content_is_idempotent_and_keys_its_input(text: str) -> None:
    normal = normalize_content(text)
    assert normalize_content(normal) == normal
    assert content_key(normal) == content_key(text)


@pytest.mark.parametrize("form", ["NFC", "NFD", "NFKC", "NFKD"])
@given(text=st.text())
def test_content_key_ignores_unicode_normal_form_and_case(
    form: Literal["NFC", "NFD", "NFKC", "NFKD"], text: str
) -> None:
    assert content_key(unicodedata.normalize(form, text)) == content_key(text)
    assert content_key(text.casefold()) == content_key(text)


@given(st.text(alphabet=st.characters(codec="ascii")))
def test_content_key_ignores_ascii_case(text: str) -> None:
    assert content_key(text.upper()) == content_key(text.lower()) == content_key(text)


@given(words, st.data())
def test_content_key_ignores_whitespace_runs(parts: list[str], data: st.DataObject) -> None:
    spaced = data.draw(whitespace) + data.draw(whitespace).join(parts) + data.draw(whitespace)
    assert content_key(spaced) == content_key(" ".join(parts))


@given(st.text(), punctuation)
def test_content_key_ignores_trailing_punctuation(text: str, tail: str) -> None:
    assert content_key(text + tail) == content_key(text)


@given(st.text())
def test_content_key_changes_when_a_word_is_added(text: str) -> None:
    assert content_key(text + " z") != content_key(text)


# --- duplicates and merging -----------------------------------------------------------------------


def test_canonical_is_earliest_created_then_smallest_id_whatever_the_order(new_id: NewId) -> None:
    s = new_id(Kind.SESSION)
    small, middle, large = (new_id(Kind.TODO) for _ in range(3))
    undated = make_todo(small, "Ship it", s, created=None)
    later = make_todo(middle, "ship it.", s, created=5)
    earlier = make_todo(large, "SHIP IT", s, created=1)
    for order in itertools.permutations([undated, later, earlier]):
        (item,) = reconcile(order).todos
        assert item.todo == earlier
        assert item.merged_ids == (small, middle, large)
    same_time = [
        make_todo(large, "Ship it", s, created=1),
        make_todo(middle, "ship it", s, created=1),
    ]
    assert reconcile(same_time).todos[0].chitty_id == middle


@pytest.mark.parametrize(
    ("statuses", "merged"),
    [
        ((TodoStatus.PENDING, TodoStatus.IN_PROGRESS), TodoStatus.IN_PROGRESS),
        ((TodoStatus.IN_PROGRESS, TodoStatus.BLOCKED), TodoStatus.BLOCKED),
        ((TodoStatus.BLOCKED, TodoStatus.COMPLETED), TodoStatus.COMPLETED),
        ((TodoStatus.COMPLETED, TodoStatus.PENDING), TodoStatus.COMPLETED),
        ((TodoStatus.PENDING, TodoStatus.PENDING), TodoStatus.PENDING),
    ],
)
def test_most_advanced_status_wins(
    new_id: NewId, statuses: tuple[TodoStatus, TodoStatus], merged: TodoStatus
) -> None:
    s = new_id(Kind.SESSION)
    todos = [make_todo(new_id(Kind.TODO), "Ship it", s, status) for status in statuses]
    (item,) = reconcile(todos).todos
    assert item.todo.status is merged


def test_status_rank_puts_blocked_between_in_progress_and_completed() -> None:
    ranked = sorted(TodoStatus, key=STATUS_RANK.__getitem__)
    assert ranked == [
        TodoStatus.PENDING,
        TodoStatus.IN_PROGRESS,
        TodoStatus.BLOCKED,
        TodoStatus.COMPLETED,
    ]
    assert len(set(STATUS_RANK.values())) == len(TodoStatus)


def test_merge_unions_and_picks_the_safest_metadata(new_id: NewId) -> None:
    a, b = new_id(Kind.SESSION), new_id(Kind.SESSION)
    alice, bob, carol = (new_id(Kind.USER) for _ in range(3))
    first, second, third = (new_id(Kind.TODO) for _ in range(3))
    todos = [
        make_todo(
            first,
            "Ship it",
            a,
            TodoStatus.COMPLETED,
            created=0,
            completed=50,
            assignees=[bob, alice],
            modified=10,
            deadline=90,
        ),
        make_todo(
            second,
            "ship it!",
            b,
            TodoStatus.COMPLETED,
            created=1,
            completed=40,
            assignees=[alice, carol],
            priority=Priority.CRITICAL,
            modified=60,
            deadline=70,
        ),
        make_todo(third, "SHIP IT", b, TodoStatus.PENDING, created=2, completed=5),
    ]
    (item,) = reconcile(todos).todos
    assert item.chitty_id == first
    assert item.todo.assignees == [bob, alice, carol]  # canonical's order first
    assert item.todo.metadata.completed_at == at(40)  # earliest completion, stale one ignored
    assert item.todo.metadata.created == at(0)
    assert item.todo.metadata.modified == at(60)
    assert item.todo.metadata.priority is Priority.CRITICAL
    assert item.todo.deadline == at(70)
    assert item.origin_sessions == tuple(sorted((a, b)))


def test_completed_at_is_cleared_when_the_merged_todo_is_not_completed(new_id: NewId) -> None:
    s = new_id(Kind.SESSION)
    stale = make_todo(new_id(Kind.TODO), "Ship it", s, TodoStatus.IN_PROGRESS, completed=3)
    (item,) = reconcile([stale]).todos
    assert item.todo.metadata.completed_at is None


def test_same_id_from_two_sessions_is_one_todo(new_id: NewId) -> None:
    a, b = new_id(Kind.SESSION), new_id(Kind.SESSION)
    shared = new_id(Kind.TODO)
    replica_a = make_todo(shared, "Ship it", a, TodoStatus.IN_PROGRESS)
    replica_b = make_todo(shared, "Ship it", b, TodoStatus.COMPLETED, completed=9)
    (item,) = reconcile([replica_a, replica_b]).todos
    assert item.todo.status is TodoStatus.COMPLETED
    assert item.merged_ids == (shared,)
    assert item.origin_sessions == tuple(sorted((a, b)))


def test_an_edited_replica_keeps_its_latest_text(new_id: NewId) -> None:
    a, b = new_id(Kind.SESSION), new_id(Kind.SESSION)
    shared = new_id(Kind.TODO)
    old = make_todo(shared, "Ship it", a, modified=1)
    edited = make_todo(shared, "Ship it on Friday", b, modified=2)
    for order in ([old, edited], [edited, old]):
        (item,) = reconcile(order).todos
        assert item.todo.content == "Ship it on Friday"
        assert item.origin_sessions == tuple(sorted((a, b)))


def test_todos_of_two_projects_are_refused(new_id: NewId) -> None:
    s = new_id(Kind.SESSION)
    p1, p2 = new_id(Kind.PROJ), new_id(Kind.PROJ)
    todos = [
        make_todo(new_id(Kind.TODO), "Ship it", s, project=p1),
        make_todo(new_id(Kind.TODO), "Test it", s, project=p2),
        make_todo(new_id(Kind.TODO), "Tag it", s),
    ]
    with pytest.raises(MixedProjects, match=f"{p1}, {p2}") as caught:
        reconcile(todos)
    assert caught.value.projects == (p1, p2)


# --- dependencies ---------------------------------------------------------------------------------


def test_dependencies_on_merged_away_ids_are_remapped(new_id: NewId) -> None:
    a, b = new_id(Kind.SESSION), new_id(Kind.SESSION)
    kept, merged_away, dependent = (new_id(Kind.TODO) for _ in range(3))
    todos = [
        make_todo(kept, "Write tests", a, created=0),
        make_todo(merged_away, "write tests.", b, created=1, deps=[kept]),  # self-dep by merging
        make_todo(dependent, "Ship it", b, created=2, deps=[merged_away, kept]),
    ]
    mesh = reconcile(todos)
    assert [item.chitty_id for item in mesh.todos] == [kept, dependent]
    assert mesh.todos[0].todo.dependencies == []
    assert mesh.todos[1].todo.dependencies == [kept]
    assert mesh.edges == ((kept, dependent),)
    assert mesh.find(merged_away) is mesh.todos[0]
    assert mesh.blocked == (dependent,)


def test_topological_order_respects_edges_then_creation_then_id(new_id: NewId) -> None:
    s = new_id(Kind.SESSION)
    base, feature, docs, release, tie = (new_id(Kind.TODO) for _ in range(5))
    todos = [
        make_todo(release, "Release", s, created=0, deps=[feature, docs]),
        make_todo(feature, "Feature", s, created=1, deps=[base]),
        make_todo(docs, "Docs", s, created=2),
        make_todo(base, "Base", s, created=3),
        make_todo(tie, "Tie", s, created=2),
    ]
    mesh = reconcile(reversed(todos))
    assert [item.chitty_id for item in mesh.todos] == [docs, tie, base, feature, release]
    assert mesh.edges == tuple(sorted([(feature, release), (docs, release), (base, feature)]))


def test_blocked_means_waiting_on_an_unfinished_dependency(new_id: NewId) -> None:
    s = new_id(Kind.SESSION)
    done, open_, waits_done, waits_open, finished_early = (new_id(Kind.TODO) for _ in range(5))
    todos = [
        make_todo(done, "Done", s, TodoStatus.COMPLETED),
        make_todo(open_, "Open", s, TodoStatus.IN_PROGRESS),
        make_todo(waits_done, "Waits on done", s, deps=[done]),
        make_todo(waits_open, "Waits on open", s, TodoStatus.IN_PROGRESS, deps=[done, open_]),
        make_todo(finished_early, "Finished anyway", s, TodoStatus.COMPLETED, deps=[open_]),
    ]
    mesh = reconcile(todos)
    assert mesh.blocked == (waits_open,)
    item = mesh.find(waits_open)
    assert item is not None
    assert item.todo.status is TodoStatus.IN_PROGRESS  # reported, not rewritten


def test_missing_dependencies_are_reported_and_block(new_id: NewId) -> None:
    s = new_id(Kind.SESSION)
    present, lonely, ghost, phantom = (new_id(Kind.TODO) for _ in range(4))
    todos = [
        make_todo(present, "Present", s, TodoStatus.COMPLETED),
        make_todo(lonely, "Lonely", s, deps=[ghost, present, phantom, ghost]),
    ]
    mesh = reconcile(todos)
    assert dict(mesh.missing_dependencies) == {lonely: (ghost, phantom)}
    assert mesh.blocked == (lonely,)
    assert mesh.edges == ((present, lonely),)
    assert mesh.find(ghost) is None


def _cycle_of(todos: Sequence[Todo]) -> DependencyCycle:
    with pytest.raises(DependencyCycle) as caught:
        reconcile(todos)
    return caught.value


def test_two_cycle_is_named(new_id: NewId) -> None:
    s = new_id(Kind.SESSION)
    first, second, downstream = (new_id(Kind.TODO) for _ in range(3))
    error = _cycle_of(
        [
            make_todo(downstream, "Downstream", s, deps=[second]),
            make_todo(second, "Second", s, deps=[first]),
            make_todo(first, "First", s, deps=[second]),
        ]
    )
    assert error.cycle == (first, second)
    assert str(error) == f"dependency cycle: {first} -> {second} -> {first}"
    assert isinstance(error, ValueError)


@pytest.mark.parametrize("reverse", [False, True])
def test_three_cycle_is_named_in_edge_order(new_id: NewId, reverse: bool) -> None:
    s = new_id(Kind.SESSION)
    x, y, z = (new_id(Kind.TODO) for _ in range(3))
    # edges run dependency -> dependent: y depends on x means "x -> y"
    needs = {x: z, y: x, z: y} if not reverse else {x: y, y: z, z: x}
    error = _cycle_of([make_todo(t, f"Todo {t}", s, deps=[d]) for t, d in needs.items()])
    assert error.cycle == ((x, y, z) if not reverse else (x, z, y))
    order = " -> ".join((*error.cycle, x))
    assert str(error) == f"dependency cycle: {order}"


def test_self_dependency_is_a_cycle(new_id: NewId) -> None:
    s = new_id(Kind.SESSION)
    loop = new_id(Kind.TODO)
    error = _cycle_of([make_todo(loop, "Loop", s, deps=[loop])])
    assert error.cycle == (loop,)
    assert str(error) == f"dependency cycle: {loop} -> {loop}"


def test_a_cycle_made_by_merging_names_canonical_ids(new_id: NewId) -> None:
    a, b = new_id(Kind.SESSION), new_id(Kind.SESSION)
    x, y, x_duplicate = (new_id(Kind.TODO) for _ in range(3))
    error = _cycle_of(
        [
            make_todo(x, "Write tests", a, created=0, deps=[y]),
            make_todo(y, "Ship it", a, created=1, deps=[x_duplicate]),
            make_todo(x_duplicate, "write tests!", b, created=2),
        ]
    )
    assert error.cycle == (x, y)


def test_dependency_cycle_survives_pickling(new_id: NewId) -> None:
    cycle = (new_id(Kind.TODO), new_id(Kind.TODO))
    copy = pickle.loads(pickle.dumps(DependencyCycle(cycle)))
    assert isinstance(copy, DependencyCycle)
    assert (copy.cycle, str(copy)) == (cycle, str(DependencyCycle(cycle)))


def test_reconciling_a_mesh_again_gives_the_same_mesh(new_id: NewId) -> None:
    a, b = new_id(Kind.SESSION), new_id(Kind.SESSION)
    kept, merged_away, later = (new_id(Kind.TODO) for _ in range(3))
    mesh = reconcile(
        [
            make_todo(kept, "Write tests", a, TodoStatus.IN_PROGRESS),
            make_todo(merged_away, "WRITE TESTS", b, TodoStatus.COMPLETED, completed=3),
            make_todo(later, "Ship it", b, created=9, deps=[merged_away]),
        ]
    )
    assert reconcile(mesh.todos) == mesh
    # a session still holding the merged-away id is folded into the same todo
    update = make_todo(merged_away, "Write tests", b, TodoStatus.COMPLETED, completed=1)
    again = reconcile([*mesh.todos, update])
    item = again.find(merged_away)
    assert item is not None and item.chitty_id == kept
    assert item.todo.metadata.completed_at == at(1)


# --- properties -----------------------------------------------------------------------------------

_pool = id_factory("property-pool")
SESSIONS = [_pool(Kind.SESSION) for _ in range(3)]
TODO_IDS = [_pool(Kind.TODO) for _ in range(6)]
ABSENT = _pool(Kind.TODO)
USERS = [_pool(Kind.USER) for _ in range(2)]
PROJECT = _pool(Kind.PROJ)
CONTENTS = [
    variant
    for phrase in ("write tests", "ship the release", "fix the build", "review docs")
    for variant in (
        phrase,
        phrase.upper() + ".",
        f"  {phrase.title()}!!",
        phrase.replace(" ", "  "),
    )
]


# Drawing each field separately costs ~20 draws a todo; sampling whole combinations keeps the
# property tests fast while still covering every field.
TEXTS = list(itertools.product(CONTENTS, SESSIONS, TodoStatus))
EXTRAS = list(
    itertools.product(
        (None, 0, 1, 2),  # created
        (None, 1, 2),  # completed
        ((None, None), (3, None), (None, 2), (3, 2)),  # (modified, deadline)
        (None, PROJECT),
        Priority,
        ((), (USERS[0],), (USERS[1], USERS[0])),  # assignees
    )
)


_index = st.integers(0, len(TODO_IDS) - 1)
_texts = st.sampled_from(TEXTS)
_extras = st.sampled_from(EXTRAS)
_any_deps = st.lists(st.sampled_from([*TODO_IDS, ABSENT]), max_size=2)
_earlier_deps = [st.lists(st.sampled_from([*TODO_IDS[:i], ABSENT]), max_size=2) for i in range(6)]


@st.composite
def todo_lists(draw: st.DrawFn, acyclic: bool = False) -> list[Todo]:
    """Todos of one project from three sessions, with duplicate texts, shared ids and deps."""
    todos = []
    for _ in range(draw(st.integers(0, 7))):
        index = draw(_index)
        content, session, status = draw(_texts)
        deps = draw(_earlier_deps[index] if acyclic else _any_deps)
        created, completed, (modified, deadline), project, priority, assignees = draw(_extras)
        todos.append(
            make_todo(
                TODO_IDS[index],
                content,
                session,
                status,
                deps=deps,
                created=created,
                completed=completed,
                modified=modified,
                deadline=deadline,
                project=project,
                priority=priority,
                assignees=assignees,
            )
        )
    return todos


def outcome(todos: Sequence[Todo | MeshTodo]) -> TodoMesh | tuple[str, ...]:
    try:
        return reconcile(todos)
    except DependencyCycle as error:
        return error.cycle


def acyclic_mesh(todos: Sequence[Todo]) -> TodoMesh:
    result = outcome(todos)
    assume(isinstance(result, TodoMesh))  # merging duplicates can still close a cycle
    assert isinstance(result, TodoMesh)
    return result


@given(todo_lists(), st.randoms(use_true_random=False))
def test_reconcile_is_independent_of_input_order(todos: list[Todo], rng: random.Random) -> None:
    shuffled = list(todos)
    rng.shuffle(shuffled)
    assert outcome(shuffled) == outcome(todos)


@given(todo_lists(acyclic=True))
def test_reconcile_is_idempotent(todos: list[Todo]) -> None:
    mesh = acyclic_mesh(todos)
    assert reconcile(mesh.todos) == mesh
    plain = reconcile([item.todo for item in mesh.todos])
    assert [item.todo for item in plain.todos] == [item.todo for item in mesh.todos]
    assert (plain.edges, plain.blocked) == (mesh.edges, mesh.blocked)
    assert plain.missing_dependencies == mesh.missing_dependencies


@given(todo_lists())
def test_redelivered_todos_change_nothing(todos: list[Todo]) -> None:
    assert outcome([*todos, *todos]) == outcome(todos)


@given(todo_lists(acyclic=True))
def test_mesh_invariants(todos: list[Todo]) -> None:
    mesh = acyclic_mesh(todos)
    where = position(mesh)
    assert all(where[dependency] < where[dependent] for dependency, dependent in mesh.edges)
    assert len({content_key(item.todo.content) for item in mesh.todos}) == len(mesh.todos)
    for todo in todos:
        item = mesh.find(todo.chitty_id)
        assert item is not None
        assert todo.session_id in item.origin_sessions
        assert STATUS_RANK[item.todo.status] >= STATUS_RANK[todo.status]
    status = {item.chitty_id: item.todo.status for item in mesh.todos}
    for item in mesh.todos:
        deps = item.todo.dependencies
        assert item.chitty_id not in deps
        waiting = any(status.get(d) is not TodoStatus.COMPLETED for d in deps)
        blocked = waiting and item.todo.status is not TodoStatus.COMPLETED
        assert (item.chitty_id in mesh.blocked) == blocked
        assert mesh.missing_dependencies.get(item.chitty_id, ()) == tuple(
            d for d in deps if d not in status
        )


# --- writing the mesh back (spec Example 2, steps 6-7) -------------------------------------------


def listed_by(todos: Sequence[Todo], session: str) -> list[str]:
    """The todos a session lists: made in it or listed in it, merged duplicates left out."""
    return sorted(
        t.chitty_id
        for t in todos
        if (t.session_id == session or session in t.listed_in) and t.merged_into is None
    )


def test_example_2_written_back_lists_the_same_five_everywhere_and_a_rerun_writes_nothing(
    new_id: NewId,
) -> None:
    project = new_id(Kind.PROJ)
    a, b, c = (new_id(Kind.SESSION) for _ in range(3))
    t1, t2a, t2b, t3, t4, t5 = (new_id(Kind.TODO) for _ in range(6))
    todos = [
        make_todo(t1, "Todo 1", a, created=0),
        make_todo(t2a, "Todo 2", a, TodoStatus.IN_PROGRESS, created=1),
        make_todo(t2b, "todo 2!", b, TodoStatus.COMPLETED, created=2, completed=30),
        make_todo(t3, "Todo 3", b, created=3, deps=[t2b], project=project),
        make_todo(t4, "Todo 4", c, TodoStatus.IN_PROGRESS, created=4),
        make_todo(t5, "Todo 5", c, created=5),
    ]
    current = {t.chitty_id: t for t in todos}
    writes = write_back(reconcile(todos), current, current.keys(), [a, b, c], project)

    by_id = {w.todo_id: w for w in writes}
    assert not any(w.create for w in writes)
    assert by_id[t2b].fields == {"mergedInto": t2a, "projectId": project}  # already completed
    assert by_id[t2a].fields["status"] == "completed"
    completed_at = by_id[t2a].fields["metadata"]["completedAt"]  # type: ignore[call-overload,index]
    assert completed_at == "2025-03-01T09:30:00Z"  # the earliest completion of the two
    assert by_id[t3].fields["dependencies"] == [t2a]  # remapped to the canonical id
    assert "projectId" not in by_id[t3].fields  # it had it
    after = written(current, writes)
    for session in (a, b, c):
        assert listed_by(list(after.values()), session) == sorted([t1, t2a, t3, t4, t5])
    assert after[t2a].status is TodoStatus.COMPLETED and after[t2b].merged_into == t2a
    again = reconcile(after.values())
    assert [item.chitty_id for item in again.todos] == [t1, t2a, t3, t4, t5]
    assert set(again.find(t2b).origin_sessions) == {a, b}  # type: ignore[union-attr]
    assert write_back(again, after, after.keys(), [a, b, c], project) == []


def test_a_todo_only_a_session_listed_is_created(new_id: NewId) -> None:
    project, session = new_id(Kind.PROJ), new_id(Kind.SESSION)
    kept = make_todo(new_id(Kind.TODO), "From an old list", session, TodoStatus.COMPLETED)
    [write] = write_back(reconcile([kept]), {kept.chitty_id: kept}, (), [session], project)
    assert write.create and write.todo_id == kept.chitty_id
    assert write.fields["status"] == "completed" and write.fields["projectId"] == project
    assert "created" not in write.fields["metadata"]  # type: ignore[operator]


@given(todo_lists(acyclic=True))
def test_writing_a_mesh_back_converges_in_one_round(todos: list[Todo]) -> None:
    current = {t.chitty_id: t for t in todos}  # one stored todo per id
    mesh = acyclic_mesh(list(current.values()))
    sessions = sorted({t.session_id for t in current.values()})
    project = next((t.project_id for t in current.values() if t.project_id), "CHITTY-PROJ-X")
    after = written(current, write_back(mesh, current, current.keys(), sessions, project))
    again = reconcile(after.values())
    assert write_back(again, after, after.keys(), sessions, project) == []
    assert [item.chitty_id for item in again.todos] == [item.chitty_id for item in mesh.todos]
    assert [item.todo.status for item in again.todos] == [item.todo.status for item in mesh.todos]
    canonical = [item.chitty_id for item in mesh.todos]
    for session in sessions:
        assert listed_by(list(after.values()), session) == sorted(canonical)
