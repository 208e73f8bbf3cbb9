"""The transport's ceiling: a bare aiohttp /ws broadcast server with the hub's framing.

No actors, no persistence, no merging: a write gets a per-entity seq, is acked and fanned out to
the subscriptions whose `projectId` filter matches. It also answers the two REST writes the
locustfile uses. `python -m loadtests.baseline_server --port 18800`
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

Frame = dict[str, Any]


@dataclass
class Board:
    """Every entity's fields and seq, and the live subscriptions (socket, projectId)."""

    todos: dict[str, Frame] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)
    watchers: list[tuple[web.WebSocketResponse, str | None]] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    offset: int = 0

    def write(self, operation: str, fields: Frame) -> tuple[Frame, int]:
        entity = fields.get("chittyId") or f"CHITTY-TODO-B{next(self.ids)}"
        merged = {**self.todos.get(entity, {}), **fields, "chittyId": entity}
        self.todos[entity] = merged
        self.seqs[entity] = seq = self.seqs.get(entity, 0) + 1
        return merged, seq

    def event(self, todo: Frame, seq: int, operation: str) -> Frame:
        self.offset += 1
        return {
            "type": "state_update",
            "domain": "todos",
            "operation": operation,
            "entityId": todo["chittyId"],
            "entity": todo,
            "seq": seq,
            "offset": self.offset,
        }

    async def fan_out(self, events: list[Frame]) -> None:
        for socket, project in list(self.watchers):
            mine = [e for e in events if project is None or e["entity"].get("projectId") == project]
            if mine and not socket.closed:
                await socket.send_str(dumps({"type": "batch", "events": mine}))


def dumps(frame: Any) -> str:
    """Compact JSON, written by orjson as the hub's gateway writes its frames."""
    return orjson.dumps(frame).decode()


BOARD = web.AppKey("board", Board)


async def ws(request: web.Request) -> web.WebSocketResponse:
    board = request.app[BOARD]
    batch_acks = (request.headers.get("X-Chitty-Acks") or request.query.get("acks")) == "batch"
    socket = web.WebSocketResponse(max_msg_size=1 << 20)
    await socket.prepare(request)
    try:
        async for message in socket:
            if message.type is not WSMsgType.TEXT:
                continue
            frame = orjson.loads(message.data)
            if isinstance(frame, dict) and frame.get("type") == "subscribe":
                project = (frame.get("filters") or {}).get("projectId")
                board.watchers.append((socket, project))
                answer = {"type": "subscribed", "subscription": frame.get("id"), "epoch": "b"}
                await socket.send_str(dumps({**answer, "offset": board.offset}))
                continue
            frames = frame if isinstance(frame, list) else [frame]
            acks, events = [], []
            for index, item in enumerate(frames):
                operation = item.get("operation", "update")
                todo, seq = board.write(operation, item.get("entity") or {})
                events.append(board.event(todo, seq, operation))
                ack = {"type": "ack", "id": item.get("id"), "index": index, "status": "applied"}
                acks.append({**ack, "entityId": todo["chittyId"], "seq": seq})
            if batch_acks and isinstance(frame, list):
                await socket.send_str(dumps({"type": "acks", "items": acks}))
            else:
                for ack in acks:
                    await socket.send_str(dumps(ack))
            await board.fan_out(events)
    finally:
        board.watchers = [(s, p) for s, p in board.watchers if s is not socket]
    return socket


async def rest_write(request: web.Request) -> web.Response:
    board = request.app[BOARD]
    fields = await request.json()
    if "id" in request.match_info:
        fields["chittyId"] = request.match_info["id"]
    operation = "update" if "id" in request.match_info else "create"
    todo, seq = board.write(operation, fields)
    await board.fan_out([board.event(todo, seq, operation)])
    body = {"entity": todo, "vectorClock": {}, "seq": seq, "conflicts": []}
    return web.json_response(body, status=201 if operation == "create" else 200)


async def rest_place(request: web.Request) -> web.Response:
    """A project or session the users write under (the hub needs them to exist; the baseline
    only answers as the hub does)."""
    fields = await request.json()
    return web.json_response(
        {"entity": fields, "vectorClock": {}, "seq": 1, "conflicts": []}, status=201
    )


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app() -> web.Application:
    app = web.Application()
    app[BOARD] = Board()
    app.router.add_get("/health", health)
    app.router.add_get("/ws", ws)
    app.router.add_post("/api/v1/todos", rest_write)
    app.router.add_put("/api/v1/todos/{id}", rest_write)
    app.router.add_post("/api/v1/projects", rest_place)
    app.router.add_post("/api/v1/sessions", rest_place)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18800)
    options = parser.parse_args()
    web.run_app(make_app(), host=options.host, port=options.port, print=None)


if __name__ == "__main__":
    main()
