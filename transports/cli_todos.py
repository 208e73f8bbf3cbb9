"""Daily work from the command line: sessions, their todos, a project's todo mesh and its
reconciliation, and the current project and session of a directory (`chitty use`), which the
commands here take when none is named."""

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text
from rich.tree import Tree

from hub.ids import Kind
from transports.cli_calls import AsJson, DryRun, Hub, chitty_id, client, run
from transports.cli_domains import (
    At,
    Domain,
    Limit,
    Sets,
    create,
    delete,
    given,
    id_arg,
    list_entities,
    made_current,
    merge,
    parse_sets,
    show,
    update,
)
from transports.cli_output import TODO_COLUMNS, console, emit_json, fail, note
from transports.cli_places import Current, current, set_current

SESSIONS = Domain(
    "sessions",
    "session",
    Kind.SESSION,
    (
        ("id", "chittyId"),
        ("platform", "platform"),
        ("status", "status"),
        ("project", "projectId"),
        ("platform's session id", "sessionId"),
    ),
)
TODOS = Domain("todos", "todo", Kind.TODO, TODO_COLUMNS)

SessionId = id_arg(Kind.SESSION, "session")
TodoId = id_arg(Kind.TODO, "todo")
OptionalSessionId = Annotated[
    str | None,
    typer.Argument(
        help="The session (CHITTY-SESSION-...; default: the current one here).",
        callback=chitty_id(Kind.SESSION, "session"),
        show_default=False,
    ),
]
SessionOption = Annotated[
    str | None,
    typer.Option(
        "--session",
        help="The session (CHITTY-SESSION-...; default: the current one here, `chitty use`).",
        callback=chitty_id(Kind.SESSION, "session"),
        show_default=False,
    ),
]
ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project",
        help="The project (CHITTY-PROJ-...; default: the current one here, `chitty use`).",
        callback=chitty_id(Kind.PROJ, "project"),
        show_default=False,
    ),
]
AllOption = Annotated[bool, typer.Option("--all", help="Ignore the current project/session.")]
STATUSES = "pending, in_progress, completed or blocked"
PRIORITIES = "low, medium, high or critical"


def here() -> Current:
    return current(os.environ, Path.cwd())


def the_session(option: str | None) -> str:
    """The session named, else the current one here, else a usage error saying how to get one."""
    if option:
        return option
    found = here().session
    if found:
        note(f"session {found} (current here; --session names another)")
        return found
    raise fail(
        "which session? Give --session CHITTY-SESSION-..., start one here with "
        "`chitty session start` (it becomes current), or pick one with `chitty use --session`",
        2,
    )


def the_project(option: str | None) -> str:
    """The project named, else the current one here, else a usage error saying how to get one."""
    if option:
        return option
    found = here().project
    if found:
        note(f"project {found} (current here; --project names another)")
        return found
    raise fail(
        "which project? Give --project CHITTY-PROJ-..., make one here with `chitty project add "
        "NAME` (it becomes current), or pick one with `chitty use --project`",
        2,
    )


# -- todos ------------------------------------------------------------------------------------

todo = typer.Typer(
    help="Todos: add, list, show, update, done, delete, reconcile, mesh.", no_args_is_help=True
)


@todo.command("add")
def todo_add(
    content: Annotated[str, typer.Argument(help="What is to be done.")],
    session_id: SessionOption = None,
    project: Annotated[
        str | None,
        typer.Option(
            help="Its project (CHITTY-PROJ-...; default: its session's).",
            callback=chitty_id(Kind.PROJ, "project"),
        ),
    ] = None,
    active_form: Annotated[
        str | None, typer.Option(help="Present-continuous label (Writing the docs).")
    ] = None,
    priority: Annotated[str | None, typer.Option(help=PRIORITIES + ".")] = None,
    status: Annotated[str | None, typer.Option(help=STATUSES + " (default pending).")] = None,
    depends_on: Annotated[
        list[str] | None, typer.Option(help="A todo it waits for (CHITTY-TODO-...); repeatable.")
    ] = None,
    assignee: Annotated[list[str] | None, typer.Option(help="A ChittyID; repeatable.")] = None,
    deadline: Annotated[datetime | None, typer.Option(help="ISO-8601 time.")] = None,
    sets: Sets = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Create a todo in a session (default: the current one here).

    It takes its session's project."""
    fields = merge(
        given(
            content=content,
            sessionId=the_session(session_id),
            projectId=project,
            activeForm=active_form,
            status=status,
            metadata__priority=priority,
            dependencies=depends_on or None,
            assignees=assignee or None,
            deadline=deadline.isoformat() if deadline else None,
        ),
        parse_sets(sets),
    )
    create(TODOS, fields, dry_run, as_json, hub)


@todo.command("list")
def todo_list(
    project: ProjectOption = None,
    session_id: SessionOption = None,
    status: Annotated[str | None, typer.Option(help=f"Only this status: {STATUSES}.")] = None,
    assignee: Annotated[
        str | None, typer.Option(help="Only todos assigned to this ChittyID.")
    ] = None,
    every: AllOption = False,
    limit: Limit = 200,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """List todos as a table (default: of the current project or session here).

    Of --project or --session, else of the current project here (else the current session),
    else (or with --all) every todo you may see."""
    title = "todos"
    if not (project or session_id or every):
        mine = here()
        project, session_id = mine.project, None if mine.project else mine.session
        if project or session_id:
            which = f"project {project}" if project else f"session {session_id}"
            title = f"todos of {which} (current here; --all for every todo)"
    list_entities(
        TODOS,
        title,
        limit,
        as_json,
        hub,
        project_id=project,
        session_id=session_id,
        status=status,
        assignee=assignee,
    )


@todo.command("show")
def todo_show(todo_id: TodoId, at: At = None, as_json: AsJson = False, hub: Hub = None) -> None:
    """Show a todo: every field, its vector clock and open conflicts."""
    show(TODOS, todo_id, at, as_json, hub)


@todo.command("update")
def todo_update(
    todo_id: TodoId,
    content: Annotated[str | None, typer.Option(help="What is to be done.")] = None,
    status: Annotated[str | None, typer.Option(help=STATUSES + ".")] = None,
    priority: Annotated[str | None, typer.Option(help=PRIORITIES + ".")] = None,
    active_form: Annotated[str | None, typer.Option(help="Present-continuous label.")] = None,
    depends_on: Annotated[
        list[str] | None, typer.Option(help="The todos it waits for, in full; repeatable.")
    ] = None,
    assignee: Annotated[
        list[str] | None, typer.Option(help="Its assignees, in full; repeatable.")
    ] = None,
    deadline: Annotated[datetime | None, typer.Option(help="ISO-8601 time.")] = None,
    sets: Sets = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Change some fields of a todo (only those given)."""
    fields = merge(
        given(
            content=content,
            status=status,
            metadata__priority=priority,
            activeForm=active_form,
            dependencies=depends_on or None,
            assignees=assignee or None,
            deadline=deadline.isoformat() if deadline else None,
        ),
        parse_sets(sets),
    )
    update(TODOS, todo_id, fields, dry_run, as_json, hub)


@todo.command("done")
def todo_done(
    todo_id: TodoId, dry_run: DryRun = False, as_json: AsJson = False, hub: Hub = None
) -> None:
    """Mark a todo completed."""
    update(TODOS, todo_id, {"status": "completed"}, dry_run, as_json, hub)


@todo.command("delete")
def todo_delete(
    todo_id: TodoId, dry_run: DryRun = False, as_json: AsJson = False, hub: Hub = None
) -> None:
    """Delete a todo (reads answer 404 afterwards; its history stays)."""
    delete(TODOS, todo_id, dry_run, as_json, hub)


@todo.command("reconcile")
def todo_reconcile(
    project: ProjectOption = None, dry_run: DryRun = False, as_json: AsJson = False, hub: Hub = None
) -> None:
    """Reconcile a project's todos (default: the current project here).

    Spec Example 2: duplicates across its sessions merge (the most advanced status wins) and
    every session lists every todo; a rerun writes nothing."""
    wanted = the_project(project)

    async def go() -> dict[str, Any]:
        async with client(hub) as hub_client:
            answer: dict[str, Any] = await hub_client.reconcile(wanted, dry_run=dry_run)
            return answer

    mesh = run(go())
    if as_json:
        emit_json(mesh)
    else:
        print_mesh(mesh)


@todo.command("mesh")
def todo_mesh(project: ProjectOption = None, as_json: AsJson = False, hub: Hub = None) -> None:
    """A project's todos as their dependency tree (nothing is written).

    As a reconciliation would leave them; the default project is the current one here."""
    wanted = the_project(project)

    async def go() -> dict[str, Any]:
        async with client(hub) as hub_client:
            answer: dict[str, Any] = await hub_client.mesh(wanted)
            return answer

    mesh = run(go())
    if as_json:
        emit_json(mesh)
    else:
        console.print(mesh_tree(mesh))


def print_mesh(mesh: dict[str, Any]) -> None:
    """A reconciled mesh as a table: content, status, origin sessions, merged-from."""
    from rich.table import Table

    writes = mesh["writes"]
    if mesh["dryRun"]:
        done = f"{len(writes)} write(s) would be made (dry run: nothing was written)"
    else:
        failed = [w for w in writes if w["status"] not in ("applied", "duplicate")]
        done = f"{len(writes) - len(failed)} todo write(s) made" + (
            f", {len(failed)} refused: "
            + "; ".join(f"{w['todoId']}: {w['status']}" for w in failed)
            if failed
            else ""
        )
    table = Table(
        title=f"project {mesh['projectId']}: {len(mesh['nodes'])} todos in "
        f"{len(mesh['sessions'])} sessions; {done}"
    )
    for column in ("todo", "content", "status", "origin sessions", "merged from"):
        table.add_column(column)
    for node in mesh["nodes"]:
        item = node["todo"]
        status = item["status"] + (" (blocked)" if node["blocked"] else "")
        table.add_row(
            item["chittyId"],
            Text(item["content"]),
            status,
            ", ".join(node["originSessions"]),
            ", ".join(node["mergedFrom"]) or "-",
        )
    console.print(table)


def mesh_tree(mesh: dict[str, Any]) -> Tree:
    """The dependency graph as a tree: the todos that wait for nothing at the top, each todo
    under those it waits for (under each of them; its own subtree is drawn once)."""
    nodes = {node["todo"]["chittyId"]: node for node in mesh["nodes"]}
    dependents: dict[str, list[str]] = {todo_id: [] for todo_id in nodes}
    waits: set[str] = set()
    for edge in mesh["edges"]:
        if edge["from"] in dependents and edge["to"] in nodes:
            dependents[edge["from"]].append(edge["to"])
            waits.add(edge["to"])
    state = "agrees with it" if mesh.get("reconciled") else "differs: `chitty todo reconcile`"
    root = Tree(
        f"project {mesh['projectId']}: {len(nodes)} todos, {len(mesh['edges'])} dependencies "
        f"(what is stored {state})"
    )
    drawn: set[str] = set()

    def label(todo_id: str, again: bool) -> Text:
        node = nodes[todo_id]
        item = node["todo"]
        text = Text.assemble((f"{item['status']:<11} ", "bold"), item["content"], f"  {todo_id}")
        extras = []
        if node["blocked"]:
            extras.append("blocked")
        if len(node["originSessions"]) > 1:
            extras.append(f"in {len(node['originSessions'])} sessions")
        if node["mergedFrom"]:
            extras.append("merged from " + ", ".join(node["mergedFrom"]))
        if again:
            extras.append("shown above")
        if extras:
            text.append(f"  ({'; '.join(extras)})", style="dim")
        return text

    def grow(branch: Tree, todo_id: str) -> None:
        again = todo_id in drawn
        child = branch.add(label(todo_id, again))
        if again:
            return
        drawn.add(todo_id)
        for dependent in dependents[todo_id]:
            grow(child, dependent)

    for todo_id in mesh["order"]:
        if todo_id in nodes and todo_id not in waits:
            grow(root, todo_id)
    for todo_id in mesh["order"]:  # a cycle has no root: show it anyway
        if todo_id in nodes and todo_id not in drawn:
            grow(root, todo_id)
    missing = mesh.get("missingDependencies") or {}
    for todo_id, absent in missing.items():
        root.add(Text(f"{todo_id} waits for todos not in the project: {', '.join(absent)}"))
    return root


# -- sessions ---------------------------------------------------------------------------------

session = typer.Typer(
    help="Sessions: start, list, show, update, resume, end.", no_args_is_help=True
)


@session.command("start")
def session_start(
    platform: Annotated[str, typer.Option(help="claude-code, web, slack, cli or mobile.")] = "cli",
    platform_id: Annotated[
        str | None,
        typer.Option(
            help="The platform's own session id (default: the hub uses the session's ChittyID)."
        ),
    ] = None,
    project: ProjectOption = None,
    use: Annotated[bool, typer.Option(help="Make it the current session here.")] = True,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Start a session; it becomes the current session here.

    In the current project here unless --project names another; `todo add` adds to it."""
    if project is None and here().project:
        project = here().project
        note(f"in project {project} (current here; --project names another)")
    fields = given(sessionId=platform_id, platform=platform, projectId=project)
    record = create(SESSIONS, fields, dry_run, as_json, hub)
    if record is not None and use:
        made_current(project=record.entity.get("projectId"), session=record.chitty_id)


@session.command("list")
def session_list(
    project: ProjectOption = None,
    status: Annotated[
        str | None, typer.Option(help="Only this status: active, paused, ended or crashed.")
    ] = None,
    every: AllOption = False,
    limit: Limit = 200,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """List sessions as a table: of --project, else of the current project here, else all."""
    title = "sessions"
    if project is None and not every and here().project:
        project = here().project
        title = f"sessions of project {project} (current here; --all for every session)"
    list_entities(SESSIONS, title, limit, as_json, hub, project_id=project, status=status)


@session.command("show")
def session_show(
    session_id: OptionalSessionId = None, at: At = None, as_json: AsJson = False, hub: Hub = None
) -> None:
    """Show a session (default: the current one here) with the todos it lists."""
    show(SESSIONS, the_session(session_id), at, as_json, hub)


@session.command("update")
def session_update(
    session_id: SessionId,
    status: Annotated[str | None, typer.Option(help="active, paused, ended or crashed.")] = None,
    project: Annotated[
        str | None,
        typer.Option(
            help="Move it to this project (CHITTY-PROJ-...).",
            callback=chitty_id(Kind.PROJ, "project"),
        ),
    ] = None,
    sets: Sets = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Change some fields of a session (only those given)."""
    fields = merge(given(status=status, projectId=project), parse_sets(sets))
    update(SESSIONS, session_id, fields, dry_run, as_json, hub)


@session.command("resume")
def session_resume(
    session_id: OptionalSessionId = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Resume a paused or crashed session (default: the current one here)."""
    update(SESSIONS, the_session(session_id), {"status": "active"}, dry_run, as_json, hub, True)


@session.command("end")
def session_end(
    session_id: OptionalSessionId = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """End a session (default: the current one here); it cannot be resumed afterwards."""
    update(SESSIONS, the_session(session_id), {"status": "ended"}, dry_run, as_json, hub)


# -- the current project and session ----------------------------------------------------------


def use(
    project: Annotated[
        str | None,
        typer.Option(
            help="Make this project current here (CHITTY-PROJ-...).",
            callback=chitty_id(Kind.PROJ, "project"),
        ),
    ] = None,
    session_id: Annotated[
        str | None,
        typer.Option(
            "--session",
            help="Make this session (and its project) current here (CHITTY-SESSION-...).",
            callback=chitty_id(Kind.SESSION, "session"),
        ),
    ] = None,
    clear: Annotated[bool, typer.Option(help="Forget this directory's current ones.")] = False,
    hub: Hub = None,
) -> None:
    """Show or set the current project and session of this directory.

    They hold for the directories under it too: `todo add`, `todo list`, `session start`,
    `todo reconcile` ... take them when no --project or --session is given."""
    if project or session_id:

        async def go() -> tuple[Any, Any]:
            async with client(hub) as hub_client:
                found_session = await hub_client.get("sessions", session_id) if session_id else None
                found_project = await hub_client.get("projects", project) if project else None
                return found_project, found_session

        _, found_session = run(go())  # each must exist on the hub
        if found_session is not None and project is None:
            project = found_session.entity.get("projectId")
            clear = clear or project is None  # a session of no project: none is current
        set_current(os.environ, Path.cwd(), project=project, session=session_id, clear=clear)
    elif clear:
        set_current(os.environ, Path.cwd(), clear=True)
    mine = here()
    if mine.set_in is None:
        console.print(
            "no current project or session here: `chitty project add NAME`, `chitty session "
            "start` or `chitty use --project/--session` sets them"
        )
        return
    console.print(f"current in {mine.set_in}:", soft_wrap=True)
    console.print(f"  project  {mine.project or '-'}")
    console.print(f"  session  {mine.session or '-'}")
