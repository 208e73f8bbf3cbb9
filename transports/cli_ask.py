"""`chitty ask`: a question to Claude, ChatGPT or Gemini through the hub, which holds the keys,
gives the model the hub's tools (run as you) and your hand-over context."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import typer

from hub.ids import Kind
from transports.cli_calls import Hub, chitty_id, client, run
from transports.cli_output import console
from transports.cli_todos import here

ASK_TIMEOUT_S = 600.0  # a model may call tools for several steps, each up to the hub's timeout

Model = Literal["claude", "chatgpt", "gemini"]


def ask(
    question: Annotated[str, typer.Argument(help="What to ask (1-4000 characters).")],
    model: Annotated[Model, typer.Option(help="The model that answers.")],
    project: Annotated[
        str | None,
        typer.Option(
            help="The project asked about (default: the current project here).",
            callback=chitty_id(Kind.PROJ, "project"),
        ),
    ] = None,
    session_id: Annotated[
        str | None,
        typer.Option(
            "--session", help="Whose hand-over context the model gets (default: current here)."
        ),
    ] = None,
    hub: Hub = None,
) -> None:
    """Ask a model; it may read and change the hub with your rights. Prints its answer, then
    each tool it called."""
    mine = here()

    async def go() -> Any:
        async with client(hub, ASK_TIMEOUT_S) as hub_client:
            return await hub_client.ask(
                question, model, project or mine.project, session_id or mine.session
            )

    answer = run(go())
    console.print(answer["answer"], markup=False, highlight=False, soft_wrap=True)
    for call in answer["toolCalls"]:
        mark = "ok" if call["ok"] else "failed"
        arguments = json.dumps(call["arguments"], sort_keys=True)
        console.print(
            f"  tool {call['name']} {arguments} {mark}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
