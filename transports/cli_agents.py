"""`chitty agents list|register|remove`: custom agents (the spec's ChittyRouter) of a hub.

A service registers its agents with its own token (CHITTY_TOKEN, and CHITTY_SIGN=1: services
sign every request); an admin sees every agent and registers one with --principal.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from hub.domains import SyncDomain
from transports.cli_calls import AsJson, Hub, client, run
from transports.cli_output import console, emit_json, fail

agents = typer.Typer(help="Custom agents: list, register, remove.", no_args_is_help=True)


def state_of(agent: dict[str, Any]) -> str:
    """What an agent is doing, in a few words: connected, delivering, failing: why, idle."""
    if agent["state"] == "failing":
        return f"failing: {agent.get('error') or 'unknown'}"
    if agent["state"] == "connected":
        return f"connected ({agent['connected']} /ws)"
    return str(agent["state"])


@agents.command("list")
def agents_list(as_json: AsJson = False, hub: Hub = None) -> None:
    """Every agent you may see: name, id, delivery, state and subscribed domains."""

    async def go() -> list[dict[str, Any]]:
        async with client(hub) as hub_client:
            found: list[dict[str, Any]] = await hub_client.agents()
            return found

    found = run(go())
    if as_json:
        emit_json(found)
        return
    table = Table(title=f"{len(found)} agents")
    for column in ("name", "id", "delivery", "state", "domains", "delivered"):
        table.add_column(column)
    for agent in found:
        delivered = agent.get("lastDelivered") or {}
        table.add_row(
            agent["name"],
            agent["agentId"],
            agent["delivery"],
            state_of(agent),
            ",".join(agent["subscribe"]["domains"]),
            str(delivered.get("events", "-")),
        )
    console.print(table)


def _domains(value: str) -> list[str]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    known = {d.value for d in SyncDomain}
    unknown = [name for name in names if name not in known]
    if not names or unknown:
        raise typer.BadParameter(
            f"{', '.join(unknown) or 'none given'}: domains are {', '.join(sorted(known))}"
        )
    return names


@agents.command("register")
def agents_register(
    name: Annotated[str, typer.Argument(help="1-64 characters of a-z, 0-9 and -.")],
    domains: Annotated[
        str, typer.Option(help="Comma-separated domains it subscribes to, e.g. todos,contexts.")
    ],
    webhook: Annotated[
        str | None,
        typer.Option(help="Deliver signed webhooks to this URL (else: it follows /ws)."),
    ] = None,
    description: Annotated[str, typer.Option(help="What the agent does.")] = "",
    principal: Annotated[
        str | None, typer.Option(help="Admins: the service (CHITTY-SERVICE id) it belongs to.")
    ] = None,
    hub: Hub = None,
) -> None:
    """Register (or update) an agent of your service; a webhook's secret is printed once."""
    wanted = _domains(domains)

    async def go() -> dict[str, Any]:
        async with client(hub) as hub_client:
            made: dict[str, Any] = await hub_client.register_agent(
                name, wanted, webhook, description, principal
            )
            return made

    made = run(go())
    console.print(f"agent {made['name']} ({made['agentId']}): {made['delivery']}")
    if made.get("webhookSecret"):
        console.print(
            "webhook secret (shown once; verify deliveries with "
            f"hub.auth.signing.verify_webhook):\n\n    {made['webhookSecret']}\n"
        )
    elif made["delivery"] == "websocket":
        console.print("it follows /ws with its own (signed) service token")


@agents.command("remove")
def agents_remove(
    agent_id: Annotated[str, typer.Argument(help="The agent's id (agent-...).")],
    hub: Hub = None,
) -> None:
    """Remove an agent: its deliveries stop, its secret is forgotten."""
    if not agent_id.startswith("agent-"):
        raise fail(f"{agent_id!r} is no agent id (agent-...; `chitty agents list` shows them)", 2)

    async def go() -> dict[str, Any]:
        async with client(hub) as hub_client:
            gone: dict[str, Any] = await hub_client.remove_agent(agent_id)
            return gone

    run(go())
    console.print(f"agent {agent_id} removed")
