"""Merge suggestions from a configured model (Claude through its emulator): asked off the
request path, shown once answered (`by` the model, with its reason), accepted like any resolve;
a model answering a value the conflict does not hold leaves the rule's suggestion."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.actors.conftest import settings_for
from tests.emulators.llm import ScriptedModel, Turn, summary_json
from tests.emulators.models import three_models
from tests.transports.conftest import Gateway
from tests.transports.test_contexts import post


@pytest.fixture(scope="module")
def claude(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, ScriptedModel]]:
    with three_models() as (emulators, env):
        gateway = Gateway(settings_for(tmp_path_factory.mktemp("suggest"), adapter_env=env))
        yield gateway, emulators["claude"]
        gateway.close()


def answering(value: object) -> Any:
    """A model that settles conflicts on `value` and summarizes anything else."""

    def answer(prompt: str) -> Turn:
        if "concurrent values" in prompt:
            return Turn(text=json.dumps({"value": value, "reason": "the blocker came later"}))
        return Turn(text=summary_json("s", []))

    return answer


def conflicted(gateway: Gateway) -> str:
    """A todo whose status two writers changed at once: its conflict's id."""
    status, body = post(gateway, "/api/v1/sessions", {"platform": "web"})
    assert status == 201, body
    status, body = post(
        gateway, "/api/v1/todos", {"content": "race", "sessionId": body["entity"]["chittyId"]}
    )
    assert status == 201, body
    todo = body["entity"]["chittyId"]
    for node, status_ in (("a", "completed"), ("b", "blocked")):
        gateway.request(
            "PUT",
            f"/api/v1/todos/{todo}",
            {"status": status_, "vectorClock": {"api": 1, node: 1}},
            {"X-Chitty-Node": node},
        )
    [conflict] = gateway.request("GET", f"/api/v1/todos/{todo}")[1]["conflicts"]
    return str(conflict["conflictId"])


def listed(gateway: Gateway, conflict_id: str) -> dict[str, Any]:
    _, body, _ = gateway.request("GET", "/api/v1/sync/conflicts?domain=todos")
    [found] = [c for c in body["conflicts"] if c["conflictId"] == conflict_id]
    return dict(found)


def test_the_models_suggestion_replaces_the_rules_once_it_answered(
    claude: tuple[Gateway, ScriptedModel],
) -> None:
    gateway, model = claude
    model.default = answering("blocked")
    conflict = conflicted(gateway)
    first = listed(gateway, conflict)["suggestion"]
    assert first["by"] in ("rule", "claude")  # the rule's until the model answered
    deadline = time.monotonic() + 15
    while (shown := listed(gateway, conflict)["suggestion"])["by"] != "claude":
        assert time.monotonic() < deadline, shown
        time.sleep(0.1)
    assert shown == {"value": "blocked", "reason": "the blocker came later", "by": "claude"}
    asked = [b for b in model.requests if "concurrent values" in json.dumps(b)]
    assert len(asked) == 1  # asked once, however often the list is read
    status, body = post(
        gateway, f"/api/v1/sync/conflicts/{conflict}/resolve", {"acceptSuggestion": True}
    )
    assert status == 200 and body["entity"]["status"] == "blocked", body


def test_a_model_answering_another_value_leaves_the_rule(
    claude: tuple[Gateway, ScriptedModel],
) -> None:
    gateway, model = claude
    model.default = answering("teleported")
    model.requests.clear()
    conflict = conflicted(gateway)
    listed(gateway, conflict)
    deadline = time.monotonic() + 15
    while not any("concurrent values" in json.dumps(b) for b in model.requests):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.3)  # its answer is in: what it said is no value of the conflict
    shown = listed(gateway, conflict)["suggestion"]
    assert shown["by"] == "rule" and shown["value"] == "completed", shown
