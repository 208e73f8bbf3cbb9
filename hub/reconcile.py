"""Todo reconciliation: merge parallel sessions' todos into one deduplicated, ordered mesh."""

from __future__ import annotations

import hashlib
import heapq
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from pydantic import JsonValue

from hub.models.todo import Priority, Todo, TodoStatus

STATUS_RANK: Mapping[TodoStatus, int] = MappingProxyType(
    {
        TodoStatus.PENDING: 0,
        TodoStatus.IN_PROGRESS: 1,
        TodoStatus.BLOCKED: 2,
        TodoStatus.COMPLETED: 3,
    }
)
"""How advanced a status is; the most advanced wins a merge.

`blocked` ranks above `in_progress` because a todo becomes blocked after work on it started (a
session that saw the blocker knows more than one that only saw the start), and below `completed`.
"""

_PRIORITY_RANK: Mapping[Priority, int] = MappingProxyType(
    {Priority.LOW: 0, Priority.MEDIUM: 1, Priority.HIGH: 2, Priority.CRITICAL: 3}
)
# Punctuation that changes a task's meaning at the end of a word ("Learn C#", "Cover 90%").
_KEPT_TRAILING = frozenset("#%")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MAX_FOLD_ROUNDS = 4  # NFKC∘casefold is stable after one round in practice; the bound is a guard

# (created is None, created, chitty_id): earliest created first, undated last, id breaks ties.
_OrderKey = tuple[bool, datetime, str]


class DependencyCycle(ValueError):
    """Todos whose dependencies form a cycle, so no order can complete them; `cycle` names them."""

    def __init__(self, cycle: tuple[str, ...]) -> None:
        self.cycle = cycle
        super().__init__("dependency cycle: " + " -> ".join((*cycle, cycle[0])))

    def __reduce__(self) -> tuple[type[DependencyCycle], tuple[tuple[str, ...]]]:
        return (DependencyCycle, (self.cycle,))


class MixedProjects(ValueError):
    """Todos of more than one project were given to one reconciliation; `projects` lists them."""

    def __init__(self, projects: tuple[str, ...]) -> None:
        self.projects = projects
        super().__init__(
            "todos of several projects cannot be reconciled together: " + ", ".join(projects)
        )

    def __reduce__(self) -> tuple[type[MixedProjects], tuple[tuple[str, ...]]]:
        return (MixedProjects, (self.projects,))


def normalize_content(content: str) -> str:
    """A todo's text made comparable: NFKC, casefolded, single-spaced, no trailing punctuation.

    Trailing punctuation is any Unicode punctuation (category P*) except `#` and `%`.
    """
    text = unicodedata.normalize("NFKC", content)
    for _ in range(_MAX_FOLD_ROUNDS):
        folded = unicodedata.normalize("NFKC", text.casefold())
        if folded == text:
            break
        text = folded
    text = " ".join(text.split())
    end = len(text)
    while end and (text[end - 1] == " " or _is_trailing_punctuation(text[end - 1])):
        end -= 1
    return text[:end]


def _is_trailing_punctuation(char: str) -> bool:
    return unicodedata.category(char).startswith("P") and char not in _KEPT_TRAILING


def content_key(content: str) -> str:
    """The duplicate-detection hash of a todo's text (sha256 hex of `normalize_content`)."""
    # surrogatepass: JSON may carry lone surrogates ("\ud800"); they must hash, not crash.
    return hashlib.sha256(normalize_content(content).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class MeshTodo:
    """One reconciled todo, the sessions it came from and every todo id merged into it."""

    todo: Todo
    origin_sessions: tuple[str, ...]
    merged_ids: tuple[str, ...]

    @property
    def chitty_id(self) -> str:
        """The canonical id: the surviving todo's."""
        return self.todo.chitty_id


@dataclass(frozen=True, slots=True)
class TodoMesh:
    """A project's reconciled todos in dependency order, with the graph and what waits on what."""

    todos: tuple[MeshTodo, ...]
    edges: tuple[tuple[str, str], ...]  # (dependency, dependent), sorted
    blocked: tuple[str, ...]
    missing_dependencies: Mapping[str, tuple[str, ...]]
    _by_id: Mapping[str, MeshTodo] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "missing_dependencies", MappingProxyType(dict(self.missing_dependencies))
        )
        index = {merged: item for item in self.todos for merged in item.merged_ids}
        object.__setattr__(self, "_by_id", MappingProxyType(index))

    def find(self, todo_id: str) -> MeshTodo | None:
        """The reconciled todo that `todo_id` (canonical or merged away) ended up in, if any."""
        return self._by_id.get(todo_id)


@dataclass(frozen=True, slots=True)
class _Member:
    """One input todo with the ids and sessions it already stands for."""

    todo: Todo
    ids: frozenset[str]
    sessions: frozenset[str]

    @classmethod
    def of(cls, item: Todo | MeshTodo) -> _Member:
        if isinstance(item, MeshTodo):
            todo = item.todo
            return cls(
                todo,
                frozenset(item.merged_ids) | {todo.chitty_id},
                frozenset(item.origin_sessions) | {todo.session_id},
            )
        return cls(item, frozenset({item.chitty_id}), frozenset({item.session_id}))

    def rank(self) -> tuple[bool, bool, datetime, str, bool, int, str]:
        """Canonical-first order: not merged away, earliest created, smallest id, latest
        modified, then content."""
        created, modified = self.todo.metadata.created, self.todo.metadata.modified
        return (
            self.todo.merged_into is not None,
            created is None,
            created or _EPOCH,
            self.todo.chitty_id,
            modified is None,
            -((modified - _EPOCH) // _MICROSECOND) if modified else 0,
            self.todo.model_dump_json(),
        )


def reconcile(todos: Iterable[Todo | MeshTodo]) -> TodoMesh:
    """Merge the todos of one project's parallel sessions into a deduplicated, ordered mesh.

    Todos with the same `content_key` or the same id are one todo, and so is a todo with the
    one it was `mergedInto` by an earlier reconciliation; the canonical one is the earliest
    created (undated last) that was not merged away, then the smallest id. Merged: the most
    advanced status (`STATUS_RANK`), `completedAt` the earliest of the completed members, union
    of assignees, `listedIn` and dependencies (remapped to canonical ids, self-dependencies
    made by merging dropped), latest `modified`, earliest deadline, highest priority.
    `MeshTodo`s may be passed back in (a mesh plus new todos), keeping their provenance, so
    reconciling a mesh's todos returns that mesh.

    A todo is reported `blocked` when it is not completed and one of its dependencies is not
    completed or not in the input (those are listed in `missing_dependencies`); its status is
    left as is, since a status never moves back under "most advanced wins" and would stay blocked
    after the blocker completed. Raises `DependencyCycle` for a cycle, `MixedProjects` for todos
    of two projects.
    """
    members = [_Member.of(item) for item in todos]
    _check_one_project(members)
    groups = [sorted(group, key=_Member.rank) for group in _groups(members)]
    canonical_of = {
        merged_id: group[0].todo.chitty_id
        for group in groups
        for member in group
        for merged_id in member.ids
    }
    by_id = {mesh.chitty_id: mesh for mesh in (_merge(group, canonical_of) for group in groups)}
    deps = {
        todo_id: tuple(d for d in mesh.todo.dependencies if d in by_id)
        for todo_id, mesh in by_id.items()
    }
    order = _topological_order(by_id, deps)
    ordered = tuple(by_id[todo_id] for todo_id in order)
    missing = {
        mesh.chitty_id: absent
        for mesh in ordered
        if (absent := tuple(d for d in mesh.todo.dependencies if d not in by_id))
    }
    blocked = tuple(
        mesh.chitty_id
        for mesh in ordered
        if mesh.todo.status is not TodoStatus.COMPLETED
        and (
            mesh.chitty_id in missing
            or any(by_id[d].todo.status is not TodoStatus.COMPLETED for d in deps[mesh.chitty_id])
        )
    )
    edges = tuple(sorted((d, todo_id) for todo_id, ds in deps.items() for d in ds))
    return TodoMesh(ordered, edges, blocked, missing)


def _check_one_project(members: list[_Member]) -> None:
    projects = {m.todo.project_id for m in members if m.todo.project_id is not None}
    if len(projects) > 1:
        raise MixedProjects(tuple(sorted(projects)))


def _groups(members: list[_Member]) -> list[list[_Member]]:
    """Connected components of members that share an id or a content key (union-find)."""
    parent = list(range(len(members)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[str, int] = {}
    for index, member in enumerate(members):
        # Ids and content keys cannot collide: a sha256 hex digest is never a ChittyID.
        merged_into = member.todo.merged_into
        labels = (*member.ids, content_key(member.todo.content))
        for label in (*labels, merged_into) if merged_into else labels:
            other = first_seen.setdefault(label, index)
            parent[root(other)] = root(index)
    components: dict[int, list[_Member]] = {}
    for index, member in enumerate(members):
        components.setdefault(root(index), []).append(member)
    return list(components.values())


def _merge(group: list[_Member], canonical_of: Mapping[str, str]) -> MeshTodo:
    """Fold a duplicate group (canonical member first) into one `MeshTodo`."""
    canonical = group[0].todo
    todos = [member.todo for member in group]
    status = max((t.status for t in todos), key=STATUS_RANK.__getitem__)
    completed_at = (
        min(
            (
                t.metadata.completed_at
                for t in todos
                if t.status is TodoStatus.COMPLETED and t.metadata.completed_at is not None
            ),
            default=None,
        )
        if status is TodoStatus.COMPLETED
        else None
    )
    dependencies: dict[str, None] = {}  # insertion-ordered set
    for member in group:
        for dependency in member.todo.dependencies:
            if dependency in member.ids:  # the member's own self-loop: a real cycle, kept
                dependencies[canonical.chitty_id] = None
                continue
            target = canonical_of.get(dependency, dependency)
            if target != canonical.chitty_id:  # a self-dependency only because of merging
                dependencies[target] = None
    metadata = canonical.metadata.model_copy(
        update={
            "modified": max((m for t in todos if (m := t.metadata.modified)), default=None),
            "completed_at": completed_at,
            "priority": max((t.metadata.priority for t in todos), key=_PRIORITY_RANK.__getitem__),
        }
    )
    todo = canonical.model_copy(
        update={
            "status": status,
            "active_form": next((t.active_form for t in todos if t.active_form), ""),
            "project_id": next((t.project_id for t in todos if t.project_id), None),
            "assignees": list(dict.fromkeys(a for t in todos for a in t.assignees)),
            "listed_in": list(dict.fromkeys(s for t in todos for s in t.listed_in)),
            "merged_into": None,
            "dependencies": list(dependencies),
            "deadline": min((d for t in todos if (d := t.deadline)), default=None),
            "metadata": metadata,
        }
    )
    return MeshTodo(
        todo,
        tuple(sorted({s for member in group for s in member.sessions})),
        tuple(sorted({i for member in group for i in member.ids})),
    )


def _order_key(todo: Todo) -> _OrderKey:
    created = todo.metadata.created
    return (created is None, created or _EPOCH, todo.chitty_id)


def _topological_order(
    by_id: Mapping[str, MeshTodo], deps: Mapping[str, tuple[str, ...]]
) -> list[str]:
    """Kahn's algorithm, ready todos taken earliest created first; raises on a cycle."""
    dependents: dict[str, list[str]] = {todo_id: [] for todo_id in by_id}
    waiting = {todo_id: len(ds) for todo_id, ds in deps.items()}
    for todo_id, ds in deps.items():
        for dependency in ds:
            dependents[dependency].append(todo_id)
    ready = [(_order_key(by_id[t].todo), t) for t, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, todo_id = heapq.heappop(ready)
        order.append(todo_id)
        for dependent in dependents[todo_id]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(ready, (_order_key(by_id[dependent].todo), dependent))
    if len(order) < len(by_id):
        raise DependencyCycle(_find_cycle(set(by_id) - set(order), deps))
    return order


def _find_cycle(stuck: set[str], deps: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """A cycle among todos Kahn could not order, in edge order, starting at its smallest id.

    Every stuck todo waits on another stuck todo, so walking from dependent to dependency
    (smallest id first, for determinism) must come back to a todo already seen.
    """
    path: list[str] = []
    seen: dict[str, int] = {}
    current = min(stuck)
    while current not in seen:
        seen[current] = len(path)
        path.append(current)
        current = min(d for d in deps[current] if d in stuck)
    cycle = path[seen[current] :][::-1]  # the walk went against the edges
    start = cycle.index(min(cycle))
    return tuple(cycle[start:] + cycle[:start])


# -- writing a mesh back (spec Example 2, steps 6-7) -------------------------------------------


@dataclass(frozen=True, slots=True)
class TodoWrite:
    """One write that brings a todo in line with its project's mesh: a create (the todo was
    only listed in a session, never an entity of its own) or an update of the `fields` that
    differ from what was read."""

    todo_id: str
    create: bool
    fields: Mapping[str, JsonValue]


# The fields reconciliation decides (others, content first, stay as their writers left them).
_FIELDS = ("status", "activeForm", "projectId", "deadline", "mergedInto")
_SET_FIELDS = ("assignees", "dependencies", "listedIn")
_STAMPED = ("created", "modified")  # metadata the hub stamps on every write


def write_back(
    mesh: TodoMesh,
    current: Mapping[str, Todo],
    stored: Collection[str],
    sessions: Collection[str],
    project_id: str,
) -> list[TodoWrite]:
    """The writes that make every todo of `current` agree with `mesh`, and nothing more.

    `current` holds every todo as read, by id (each `MeshTodo.merged_ids` member is in it);
    `sessions` are every session of the project. A canonical todo takes its merged status,
    priority, deadline, assignees and dependencies (remapped), belongs to the project, and is
    `listedIn` every session of the project but its own; every other member of its group is
    marked `mergedInto` it with the same status. A todo some session only listed (not an
    entity of its own: absent from `stored`, as sessions kept their todo lists before todos
    were entities) is created. Running it on what its writes produced
    yields no writes: reconciliation is idempotent.
    """
    writes: list[TodoWrite] = []
    for item in mesh.todos:
        merged = item.todo
        listed = sorted({*merged.listed_in, *sessions} - {merged.session_id})
        canonical = merged.model_copy(
            update={"project_id": project_id, "listed_in": listed, "merged_into": None}
        )
        for member_id in item.merged_ids:
            before = current[member_id]
            if member_id == item.chitty_id:
                after = canonical.model_copy(update={"content": before.content})
            else:
                after = before.model_copy(
                    update={
                        "status": merged.status,
                        "merged_into": item.chitty_id,
                        "project_id": project_id,
                        "metadata": before.metadata.model_copy(
                            update={"completed_at": merged.metadata.completed_at}
                        ),
                    }
                )
            if member_id not in stored:
                writes.append(TodoWrite(member_id, True, _created(after)))
            elif change := _difference(before, after):
                writes.append(TodoWrite(member_id, False, change))
    return writes


def written(current: Mapping[str, Todo], writes: Iterable[TodoWrite]) -> dict[str, Todo]:
    """`current` as `writes` leave it (what reconciling it again starts from)."""
    after = dict(current)
    for write in writes:
        wire = after[write.todo_id].model_dump(mode="json", by_alias=True)
        for name, value in write.fields.items():
            if name == "metadata" and isinstance(value, dict):
                wire["metadata"] = {**wire["metadata"], **value}
            else:
                wire[name] = value
        after[write.todo_id] = Todo.model_validate(wire)
    return after


def _created(todo: Todo) -> dict[str, JsonValue]:
    """A todo's wire fields as a create sends them (the hub stamps the times it keeps)."""
    fields: dict[str, JsonValue] = todo.model_dump(mode="json", by_alias=True)
    metadata = fields["metadata"]
    assert isinstance(metadata, dict)
    for stamped in _STAMPED:
        metadata.pop(stamped, None)
    return fields


def _difference(before: Todo, after: Todo) -> dict[str, JsonValue]:
    """The wire fields of `after` that differ from `before` (sets compared as sets); a status
    change carries the `completedAt` it implies."""
    old = before.model_dump(mode="json", by_alias=True)
    new = after.model_dump(mode="json", by_alias=True)
    change: dict[str, JsonValue] = {}
    for name in _FIELDS:
        if old[name] != new[name]:
            change[name] = new[name]
    for name in _SET_FIELDS:
        if set(old[name]) != set(new[name]):
            change[name] = new[name]
    metadata: dict[str, JsonValue] = {}
    if old["metadata"]["priority"] != new["metadata"]["priority"]:
        metadata["priority"] = new["metadata"]["priority"]
    if "status" in change and new["metadata"]["completedAt"] is not None:
        metadata["completedAt"] = new["metadata"]["completedAt"]
    if metadata:
        change["metadata"] = metadata
    return change
