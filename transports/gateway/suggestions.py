"""Merge suggestions as the gateway shows them: the rule's (`hub.suggest`), or, when a model is
configured, the model's, asked off the request path.

A conflict listed for the first time shows the rule's suggestion and starts one question to the
model (the first configured of Claude, ChatGPT, Gemini) in the background; once it answers with
one of the conflict's values, that answer (with the model's reason, `by` the model) is what the
list shows and what accepting the suggestion writes. A model that fails, times out or answers a
value the conflict does not hold changes nothing: the rule's suggestion stays."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from hub.adapters import DeliveryError
from hub.domains import DOMAINS
from hub.ids import parse
from hub.suggest import Suggestion, suggest
from transports.models.agents import model_adapter
from transports.models.providers import PROVIDERS

log = logging.getLogger(__name__)
KEPT = 1_000  # conflicts whose model suggestion is remembered
ASKING_AT_ONCE = 2
INSTRUCTIONS = (
    "You settle edit conflicts in a shared todo hub. Concurrent writes left one field with "
    "several values. Pick the value to keep, one of those given, and say why in one sentence. "
    'Answer only a JSON object: {"value": <one of the values>, "reason": "<why>"}'
)


def domain_of(conflict: Mapping[str, Any]) -> str:
    """A conflict's domain, from its entity's kind. A CONTEXT id is a topic's or a context's;
    only topics have multi-value fields (`hub.suggest.RULES`' test lists them all), and topics
    come first in `DOMAINS`, so a CONTEXT conflict is a topic's."""
    kind = parse(str(conflict["entityId"])).kind
    return next(d for d, spec in DOMAINS.items() if spec.kind is kind).value


def values_of(conflict: Mapping[str, Any]) -> list[Any]:
    return [v["value"] for v in conflict.get("versions") or []]


class Suggestions:
    """The suggestion shown for each conflict, the model's once it answered."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.model = next((p.name for p in PROVIDERS if p.api_key(env)), None)
        self.asked = 0
        self.failed = 0
        self._found: OrderedDict[str, Suggestion | None] = OrderedDict()
        self._asking = asyncio.Semaphore(ASKING_AT_ONCE)
        self._tasks: set[asyncio.Task[None]] = set()

    def of(self, conflict: Mapping[str, Any]) -> Suggestion | None:
        """What to suggest for `conflict` now (starting the model's answer if it has none)."""
        rule = suggest(domain_of(conflict), str(conflict["field"]), values_of(conflict))
        if self.model is None:
            return rule
        key = json.dumps([conflict["conflictId"], values_of(conflict)], sort_keys=True)
        if key in self._found:
            return self._found[key] or rule
        self._found[key] = None  # asked once: a failure is not asked again
        while len(self._found) > KEPT:
            self._found.popitem(last=False)
        task = asyncio.create_task(self._ask(self.model, key, conflict, rule))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return rule

    def wire(self, conflict: Mapping[str, Any]) -> dict[str, Any]:
        """A listed conflict with its suggestion (null: none; the person chooses)."""
        found = self.of(conflict)
        return {**conflict, "suggestion": None if found is None else found.wire()}

    async def _ask(
        self, model: str, key: str, conflict: Mapping[str, Any], rule: Suggestion | None
    ) -> None:
        adapter = model_adapter(self.env, model)
        if adapter is None:
            return
        values = values_of(conflict)
        question = (
            f"Field {conflict['field']!r} of {domain_of(conflict)[:-1]} {conflict['entityId']} "
            f"has these concurrent values: {json.dumps(values)}."
        )
        if rule is not None:
            question += f" A rule would keep {json.dumps(rule.value)}: {rule.reason}."
        async with self._asking:
            self.asked += 1
            try:
                adapter.context = INSTRUCTIONS
                reply = await adapter.sync_conversation([question])
                text = reply.text
                body = json.loads(text[text.find("{") : text.rfind("}") + 1])
                value, reason = body["value"], str(body["reason"]).strip()[:500]
            except (DeliveryError, ValueError, KeyError, TypeError) as error:
                self.failed += 1
                log.info("no %s suggestion for %s: %s", model, conflict["conflictId"], error)
                return
        if value not in values or not reason:
            self.failed += 1
            return
        self._found[key] = Suggestion(value, reason, model)
