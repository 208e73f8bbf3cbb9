"""`chitty project|topic|context|repo|service add|list|show|update|delete`: every domain from the
command line, as tables (or `--json`), each write with `--dry-run`.

Each domain's `add` and `update` take its common fields as options; `--set path=value` (the
value JSON, or plain text) reaches any other field by its wire path, e.g.
`--set metadata.team='["CHITTY-USER-..."]'`. An update is made from the entity as read just
before (its vector clock), so a text edit merges with concurrent ones and a list given in full
replaces the one that was read."""

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hub.ids import Kind
from transports.cli_calls import AsJson, DryRun, Hub, chitty_id, client, run
from transports.cli_output import (
    Columns,
    at,
    console,
    emit_json,
    entity_table,
    fail,
    note,
    show_record,
    show_written,
)

Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Any other field: PATH=VALUE (VALUE is JSON, or else plain text); repeatable.",
        show_default=False,
    ),
]
Limit = Annotated[int, typer.Option(help="At most this many.", min=1)]
At = Annotated[datetime | None, typer.Option(help="ISO-8601 time: as it was then.")]


@dataclass(frozen=True, slots=True)
class Domain:
    """A domain as the CLI shows it: its REST name, what one is called, its id kind, columns."""

    name: str  # the REST collection: projects, topics, ...
    noun: str  # one of them: project, topic, ...
    kind: Kind
    columns: Columns

    def id_arg(self) -> Any:
        """The type of a command argument naming one of them (checked before any call)."""
        return id_arg(self.kind, self.noun)


def id_arg(kind: Kind, noun: str) -> Any:
    """A command argument's type: a ChittyID of `kind` (else a usage error, before any call)."""
    return Annotated[
        str,
        typer.Argument(
            help=f"The {noun} (CHITTY-{kind.value}-...).",
            callback=chitty_id(kind, noun),
            show_default=False,
        ),
    ]


PROJECTS = Domain(
    "projects",
    "project",
    Kind.PROJ,
    (("id", "chittyId"), ("name", "name"), ("status", "status"), ("sessions", "sessions")),
)
TOPICS = Domain(
    "topics",
    "topic",
    Kind.CONTEXT,
    (
        ("id", "chittyId"),
        ("title", "title"),
        ("status", "metadata.status"),
        ("tags", "metadata.tags"),
    ),
)
CONTEXTS = Domain(
    "contexts",
    "context",
    Kind.CONTEXT,
    (("id", "chittyId"), ("type", "type"), ("summary", "content.summary"), ("sources", "sources")),
)
REPOS = Domain(
    "repos",
    "repo",
    Kind.REPO,
    (
        ("id", "chittyId"),
        ("path", "path"),
        ("branch", "branch"),
        ("commit", "commit"),
        ("working tree", "workingTree"),
        ("ahead", "ahead"),
        ("behind", "behind"),
        ("sync", "metadata.syncStatus"),
        ("read", "metadata.lastSync"),
        ("error", "metadata.error"),
    ),
)
SERVICES = Domain(
    "services",
    "service",
    Kind.SERVICE,
    (
        ("id", "chittyId"),
        ("name", "name"),
        ("type", "type"),
        ("health", "health"),
        ("since", "metadata.healthSince"),
        ("latency ms", "latencyMs"),
        ("checked", "metadata.lastHealthCheck"),
        ("version", "metadata.version"),
        ("error", "metadata.error"),
    ),
)


def parse_sets(sets: Sequence[str] | None) -> dict[str, Any]:
    """`--set a.b=1 --set c=x` as nested fields: {"a": {"b": 1}, "c": "x"}."""
    fields: dict[str, Any] = {}
    for item in sets or ():
        path, equals, raw = item.partition("=")
        if not equals or not path.strip():
            raise typer.BadParameter(f"{item!r} is not PATH=VALUE", param_hint="--set")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        merge(fields, nested(path.strip(), value))
    return fields


def nested(path: str, value: Any) -> dict[str, Any]:
    """`a.b`, 1 -> {"a": {"b": 1}}."""
    head, _, rest = path.partition(".")
    return {head: nested(rest, value) if rest else value}


def merge(into: dict[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `more` into `into`, object by object (a later value wins)."""
    for key, value in more.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


def given(**options: Any) -> dict[str, Any]:
    """The fields whose option was given (None: not given), by dotted wire path."""
    fields: dict[str, Any] = {}
    for path, value in options.items():
        if value is not None:
            merge(fields, nested(path.replace("__", "."), value))
    return fields


def check_locally(domain: str, fields: Mapping[str, Any]) -> None:
    """Validate a new entity's fields with the hub's own model (a dry run sends nothing)."""
    from pydantic import ValidationError

    from hub.codec import field_path
    from hub.domains import DOMAINS, SyncDomain

    spec = DOMAINS[SyncDomain(domain)]
    try:
        spec.model.model_validate({"chittyId": f"CHITTY-{spec.kind.value}-DRYRUN", **fields})
    except ValidationError as error:
        path, reason = field_path(error)
        raise fail(f"{path}: {reason}") from None


def check_change(domain: str, entity: Mapping[str, Any], fields: Mapping[str, Any]) -> None:
    """Validate a change locally as the hub would (the values, and a status transition), so
    a dry run refuses what the real run would refuse."""
    from hub.domains import DOMAINS, SyncDomain

    whole = merge(copy.deepcopy(dict(entity)), fields)
    check_locally(domain, whole)
    lifecycle = DOMAINS[SyncDomain(domain)].lifecycle
    if lifecycle is not None:
        old, new = at(entity, lifecycle.path), at(whole, lifecycle.path)
        reason = lifecycle.check(str(old), str(new)) if old is not None else None
        if reason is not None:
            raise fail(f"{lifecycle.path}: {reason}")


def create(
    domain: Domain, fields: dict[str, Any], dry_run: bool, as_json: bool, hub: str | None
) -> Any:
    """Create an entity (or, in a dry run, validate and show it); the record made."""
    if dry_run:
        check_locally(domain.name, fields)
        if as_json:
            emit_json({"dryRun": True, "create": domain.name, "fields": fields})
        else:
            console.print(f"[yellow]dry run:[/] would create a {domain.noun} (nothing was sent)")
            console.print_json(json.dumps(fields))
        return None

    async def go() -> Any:
        async with client(hub) as hub_client:
            return await hub_client.create(domain.name, fields)

    record = run(go())
    show_written("created", domain.noun, record, as_json)
    return record


def update(
    domain: Domain,
    entity_id: str,
    fields: dict[str, Any],
    dry_run: bool,
    as_json: bool,
    hub: str | None,
    full: bool = False,
) -> Any:
    """Change the fields given, made from the entity as read now; the record after it."""
    if not fields:
        raise fail(
            f"nothing to change: give at least one field (chitty {domain.noun} update --help)", 2
        )

    async def go() -> Any:
        async with client(hub) as hub_client:
            seen = await hub_client.get(domain.name, entity_id)
            if dry_run:
                return seen
            return await hub_client.update(domain.name, entity_id, fields, base=seen)

    record = run(go())
    if dry_run:
        check_change(domain.name, record.entity, fields)
        if as_json:
            emit_json({"dryRun": True, "update": entity_id, "fields": fields})
            return None
        console.print(f"[yellow]dry run:[/] {entity_id} would change (nothing was sent):")
        for path, value in _leaves(fields):
            now = json.dumps(at(record.entity, path))
            console.print(f"  {path}: {now} -> {json.dumps(value)}", soft_wrap=True)
        return None
    if full:
        show_record(f"updated {domain.noun}", record, as_json)
    else:
        show_written("updated", domain.noun, record, as_json)
    return record


def _leaves(fields: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for key, value in fields.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            found += _leaves(value, f"{path}.")
        else:
            found.append((path, value))
    return found


def show(
    domain: Domain, entity_id: str, moment: datetime | None, as_json: bool, hub: str | None
) -> Any:
    """One entity now (or as it was at `moment`) as a table of its fields."""
    when = moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment

    async def go() -> Any:
        async with client(hub) as hub_client:
            if when is None:
                return await hub_client.get(domain.name, entity_id)
            return await hub_client.state_at(domain.name, entity_id, when)

    record = run(go())
    title = domain.noun if when is None else f"{domain.noun} at {when.isoformat()}:"
    show_record(title, record, as_json)
    repos = record.entity.get("repos") if domain is PROJECTS else None
    if repos and not as_json and when is None:
        show_repos(repos, hub)
    return record


def show_repos(repo_ids: Sequence[str], hub: str | None) -> None:
    """A project's repos and their state, as the hub last read them."""

    from transports.client import ChittyApiError

    async def go() -> list[dict[str, Any]]:
        async with client(hub) as hub_client:
            found: list[dict[str, Any]] = []
            for repo_id in repo_ids:
                try:
                    found.append((await hub_client.get(REPOS.name, repo_id)).entity)
                except ChittyApiError as error:  # gone, or not visible to this caller
                    found.append({"chittyId": repo_id, "metadata": {"error": error.detail}})
            return found

    console.print(entity_table(f"its {len(repo_ids)} repos", run(go()), REPOS.columns))


def delete(domain: Domain, entity_id: str, dry_run: bool, as_json: bool, hub: str | None) -> None:
    """Delete an entity (reads answer 404 afterwards; its history stays)."""

    async def go() -> Any:
        async with client(hub) as hub_client:
            if dry_run:
                return await hub_client.get(domain.name, entity_id)
            return await hub_client.delete(domain.name, entity_id)

    record = run(go())
    if as_json:
        emit_json({"dryRun": dry_run, "deleted": entity_id, "seq": record.seq})
    elif dry_run:
        console.print(
            f"[yellow]dry run:[/] would delete {domain.noun} {entity_id} (nothing was sent)"
        )
    else:
        console.print(f"deleted {domain.noun} {entity_id}")


def list_entities(
    domain: Domain,
    title: str,
    limit: int,
    as_json: bool,
    hub: str | None,
    columns: Columns | None = None,
    **filters: str | None,
) -> list[dict[str, Any]]:
    """Every entity of a domain matching `filters` (all pages, up to `limit`), as a table."""

    async def go() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None
        async with client(hub) as hub_client:
            while len(found) < limit:
                page = await hub_client.list(
                    domain.name, cursor=cursor, limit=min(500, limit - len(found)), **filters
                )
                found += [record.entity for record in page.items]
                cursor = page.cursor
                if cursor is None:
                    break
        return found

    entities = run(go())
    if as_json:
        emit_json(entities)
    else:
        console.print(entity_table(f"{len(entities)} {title}", entities, columns or domain.columns))
    return entities


def add_read_and_delete_verbs(group: typer.Typer, domain: Domain, statuses: str | None) -> None:
    """`list`, `show` and `delete` of `domain` on `group` (`statuses`: what --status takes)."""
    EntityId = domain.id_arg()

    if statuses is not None:

        @group.command("list")
        def list_with_status(
            status: Annotated[
                str | None, typer.Option(help=f"Only this status: {statuses}.")
            ] = None,
            limit: Limit = 200,
            as_json: AsJson = False,
            hub: Hub = None,
        ) -> None:
            list_entities(domain, domain.name, limit, as_json, hub, status=status)

        list_with_status.__doc__ = f"List {domain.name} as a table (all pages, up to --limit)."
    else:

        @group.command("list")
        def list_all(limit: Limit = 200, as_json: AsJson = False, hub: Hub = None) -> None:
            list_entities(domain, domain.name, limit, as_json, hub)

        list_all.__doc__ = f"List {domain.name} as a table (all pages, up to --limit)."

    @group.command("show")
    def show_one(
        entity_id: EntityId, at: At = None, as_json: AsJson = False, hub: Hub = None
    ) -> None:
        show(domain, entity_id, at, as_json, hub)

    show_one.__doc__ = f"Show a {domain.noun}: every field, its vector clock and open conflicts."

    @group.command("delete")
    def delete_one(
        entity_id: EntityId, dry_run: DryRun = False, as_json: AsJson = False, hub: Hub = None
    ) -> None:
        delete(domain, entity_id, dry_run, as_json, hub)

    delete_one.__doc__ = f"Delete a {domain.noun} (reads answer 404 afterwards; its history stays)."


def _typer(domain: Domain, verbs: str) -> typer.Typer:
    return typer.Typer(help=f"{domain.noun.title()}s: {verbs}.", no_args_is_help=True)


# -- projects ---------------------------------------------------------------------------------

project = _typer(PROJECTS, "add, list, show, update, delete")
PROJECT_STATUSES = "planning, active, on-hold, completed"


@project.command("add")
def project_add(
    name: Annotated[str, typer.Argument(help="The project's name.")],
    description: Annotated[str | None, typer.Option(help="What it is about.")] = None,
    status: Annotated[str | None, typer.Option(help=PROJECT_STATUSES + ".")] = None,
    owner: Annotated[str | None, typer.Option(help="Its owner's ChittyID.")] = None,
    use: Annotated[bool, typer.Option(help="Make it the current project here.")] = True,
    sets: Sets = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Create a project; it becomes the current project of this directory (see `chitty use`)."""
    fields = merge(
        given(name=name, description=description, status=status, metadata__owner=owner),
        parse_sets(sets),
    )
    record = create(PROJECTS, fields, dry_run, as_json, hub)
    if record is not None and use:
        made_current(project=record.chitty_id)


@project.command("update")
def project_update(
    entity_id: PROJECTS.id_arg(),
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    description: Annotated[str | None, typer.Option(help="The whole new description.")] = None,
    status: Annotated[str | None, typer.Option(help=PROJECT_STATUSES + ".")] = None,
    owner: Annotated[str | None, typer.Option(help="Its owner's ChittyID.")] = None,
    sets: Sets = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Change some fields of a project (only those given)."""
    fields = merge(
        given(name=name, description=description, status=status, metadata__owner=owner),
        parse_sets(sets),
    )
    update(PROJECTS, entity_id, fields, dry_run, as_json, hub)


add_read_and_delete_verbs(project, PROJECTS, PROJECT_STATUSES)

# -- topics -----------------------------------------------------------------------------------

topic = _typer(TOPICS, "add, list, show, update, delete")
TOPIC_STATUSES = "active, archived, closed"


@topic.command("add")
def topic_add(
    title: Annotated[str, typer.Argument(help="The topic's title.")],
    description: Annotated[str | None, typer.Option(help="What it is about.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag; repeatable.")] = None,
    participant: Annotated[
        list[str] | None, typer.Option(help="A participant's ChittyID; repeatable.")
    ] = None,
    sets: Sets = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Create a topic (a subject shared by people, sessions and artifacts)."""
    fields = merge(
        given(
            title=title,
            description=description,
            metadata__tags=tag or None,
            participants=participant or None,
        ),
        parse_sets(sets),
    )
    create(TOPICS, fields, dry_run, as_json, hub)


@topic.command("update")
def topic_update(
    entity_id: TOPICS.id_arg(),
    title: Annotated[str | None, typer.Option(help="A new title.")] = None,
    description: Annotated[str | None, typer.Option(help="The whole new description.")] = None,
    status: Annotated[str | None, typer.Option(help=TOPIC_STATUSES + ".")] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="The tags, in full (replaces them); repeatable.")
    ] = None,
    sets: Sets = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Change some fields of a topic (only those given)."""
    fields = merge(
        given(
            title=title,
            description=description,
            metadata__status=status,
            metadata__tags=tag or None,
        ),
        parse_sets(sets),
    )
    update(TOPICS, entity_id, fields, dry_run, as_json, hub)


add_read_and_delete_verbs(topic, TOPICS, TOPIC_STATUSES)

# -- contexts ---------------------------------------------------------------------------------

context = _typer(CONTEXTS, "add, list, show, update, delete")
CONTEXT_TYPES = "session, conversation, document or system"


@context.command("add")
def context_add(
    kind: Annotated[str, typer.Argument(metavar="TYPE", help=f"Its type: {CONTEXT_TYPES}.")],
    summary: Annotated[str | None, typer.Option(help="Its summary.")] = None,
    key_point: Annotated[list[str] | None, typer.Option(help="A key point; repeatable.")] = None,
    source: Annotated[
        list[str] | None, typer.Option(help="The ChittyID it came from; repeatable.")
    ] = None,
    sets: Sets = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Create a context (what people and models share about a piece of work)."""
    fields = merge(
        given(
            type=kind,
            content__summary=summary,
            content__keyPoints=key_point or None,
            sources=source or None,
        ),
        parse_sets(sets),
    )
    create(CONTEXTS, fields, dry_run, as_json, hub)


@context.command("update")
def context_update(
    entity_id: CONTEXTS.id_arg(),
    summary: Annotated[str | None, typer.Option(help="The whole new summary.")] = None,
    key_point: Annotated[
        list[str] | None, typer.Option(help="The key points, in full; repeatable.")
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option(help="The sources, in full; repeatable.")
    ] = None,
    sets: Sets = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Change some fields of a context (only those given)."""
    fields = merge(
        given(
            content__summary=summary,
            content__keyPoints=key_point or None,
            sources=source or None,
        ),
        parse_sets(sets),
    )
    update(CONTEXTS, entity_id, fields, dry_run, as_json, hub)


add_read_and_delete_verbs(context, CONTEXTS, None)

# -- repos ------------------------------------------------------------------------------------

repo = _typer(REPOS, "add, list, show, update, delete")


@repo.command("add")
def repo_add(
    path: Annotated[
        str,
        typer.Argument(
            help="Its local checkout (default: here), read by the hub; or a remote URL alone."
        ),
    ] = ".",
    url: Annotated[str | None, typer.Option(help="Where it is cloned from.")] = None,
    project: Annotated[
        str | None,
        typer.Option(
            help="Add it to this project's repos (CHITTY-PROJ-...).",
            callback=chitty_id(Kind.PROJ, "project"),
        ),
    ] = None,
    sets: Sets = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Track a git repository: the hub reads its branch, HEAD, working tree and ahead/behind
    now and on every check interval (`chitty sync repos` reads them all again)."""
    remote = "://" in path or path.startswith("git@")
    if remote and url is not None:
        raise fail("give the remote URL once: as the argument or as --url", 2)
    where = None if remote else str(Path(path).expanduser().resolve())
    fields = merge(given(path=where, url=path if remote else url), parse_sets(sets))
    record = create(REPOS, fields, dry_run, as_json, hub)
    if record is None:
        return
    if project is not None:
        _add_to_project(project, record.chitty_id, hub)
    if where is not None and not as_json:
        show_checked(check_now(REPOS, record.chitty_id, hub))


def _add_to_project(project: str, repo_id: str, hub: str | None) -> None:
    async def go() -> None:
        async with client(hub) as hub_client:
            seen = await hub_client.get(PROJECTS.name, project)
            repos = [*seen.entity.get("repos", []), repo_id]
            await hub_client.update(PROJECTS.name, project, {"repos": repos}, base=seen)

    run(go())
    note(f"added to project {project}")


def check_now(domain: Domain, entity_id: str, hub: str | None) -> list[dict[str, Any]]:
    """Have the hub read the repo (or check the service) now: what it found."""

    async def go() -> Any:
        async with client(hub) as hub_client:
            return await hub_client.sync_entity(domain.name, entity_id)

    answer = run(go())
    checked: list[dict[str, Any]] = answer.get("checked") or []
    return checked


def show_checked(checked: Sequence[Mapping[str, Any]]) -> None:
    """What reading repos and checking services found, a line each."""
    if not checked:
        return
    table = Table(title="checked now")
    for column in ("id", "name", "state", "detail"):
        table.add_column(column)
    for c in checked:
        state = c["state"]
        color = {"healthy": "green", "clean": "green", "degraded": "yellow", "dirty": "yellow"}
        shown = f"[{color.get(state, 'red')}]{state}[/]"
        table.add_row(c["entityId"], c["name"], shown, c["error"] or c["detail"])
    console.print(table)


@repo.command("update")
def repo_update(
    entity_id: REPOS.id_arg(),
    path: Annotated[str | None, typer.Option(help="Its local checkout, read by the hub.")] = None,
    url: Annotated[str | None, typer.Option(help="Where it is cloned from.")] = None,
    sets: Sets = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Change where a repo is (its state is what the hub reads there: `chitty sync repos`)."""
    where = str(Path(path).expanduser().resolve()) if path is not None else None
    update(
        REPOS, entity_id, merge(given(path=where, url=url), parse_sets(sets)), dry_run, as_json, hub
    )


add_read_and_delete_verbs(repo, REPOS, None)

# -- services ---------------------------------------------------------------------------------

service = _typer(SERVICES, "add, list, show, update, delete")
SERVICE_TYPES = "chittyapp, chittyservice or external"
HEALTH = "healthy, degraded, down or unknown"


@service.command("add")
def service_add(
    name: Annotated[str, typer.Argument(help="The service's name.")],
    kind: Annotated[str | None, typer.Option("--type", help=SERVICE_TYPES + ".")] = None,
    repo_id: Annotated[
        str | None,
        typer.Option(
            "--repo",
            help="Its repo (CHITTY-REPO-...).",
            callback=chitty_id(Kind.REPO, "repo"),
        ),
    ] = None,
    endpoint: Annotated[
        list[str] | None, typer.Option(help="A URL it serves (https); repeatable.")
    ] = None,
    check: Annotated[
        str | None,
        typer.Option(
            help="Its health check: an http(s) URL to GET, or tcp://host:port to connect to "
            "(default: a GET of its first http(s) endpoint)."
        ),
    ] = None,
    interval: Annotated[
        float | None, typer.Option(help="Seconds between checks (default: the hub's).", min=1)
    ] = None,
    version: Annotated[str | None, typer.Option(help="The version deployed.")] = None,
    sets: Sets = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Register a service (a ChittyOS app, service or external dependency); the hub checks
    its health on an interval (`chitty service list` shows it, `chitty sync services` checks
    now)."""
    endpoints = [_endpoint(url) for url in endpoint] if endpoint else None
    fields = merge(
        given(
            name=name,
            type=kind,
            repoId=repo_id,
            endpoints=endpoints,
            check=_check(check, interval),
            metadata__version=version,
        ),
        parse_sets(sets),
    )
    create(SERVICES, fields, dry_run, as_json, hub)


def _check(target: str | None, interval: float | None) -> dict[str, Any] | None:
    if target is None:
        return {"intervalS": interval} if interval is not None else None
    tcp = target.startswith("tcp://")
    check: dict[str, Any] = (
        {"kind": "tcp", "address": target.removeprefix("tcp://")}
        if tcp
        else {"kind": "http", "url": target}
    )
    if interval is not None:
        check["intervalS"] = interval
    return check


@service.command("update")
def service_update(
    entity_id: SERVICES.id_arg(),
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    health: Annotated[str | None, typer.Option(help=HEALTH + ".")] = None,
    version: Annotated[str | None, typer.Option(help="The version deployed.")] = None,
    endpoint: Annotated[
        list[str] | None, typer.Option(help="The URLs it serves, in full; repeatable.")
    ] = None,
    sets: Sets = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    hub: Hub = None,
) -> None:
    """Change some fields of a service (only those given)."""
    endpoints = [_endpoint(url) for url in endpoint] if endpoint else None
    fields = merge(
        given(name=name, health=health, metadata__version=version, endpoints=endpoints),
        parse_sets(sets),
    )
    update(SERVICES, entity_id, fields, dry_run, as_json, hub)


def _endpoint(url: str) -> dict[str, str]:
    scheme = url.partition("://")[0].lower()
    known = {"http", "https", "ws", "wss", "grpc", "mcp"}
    return {"url": url, "protocol": scheme if scheme in known else "https"}


add_read_and_delete_verbs(service, SERVICES, None)

GROUPS: Mapping[str, typer.Typer] = {
    "project": project,
    "topic": topic,
    "context": context,
    "repo": repo,
    "service": service,
}


def made_current(project: str | None = None, session: str | None = None) -> None:
    """Make a new project or session the current one of this directory, and say so."""
    import os

    from transports.cli_places import set_current

    set_current(os.environ, Path.cwd(), project=project, session=session)
    what = " and ".join(
        f"{noun} {value}" for noun, value in (("project", project), ("session", session)) if value
    )
    note(f"{what}: now current in {Path.cwd()} (`chitty use` shows or changes it)")
