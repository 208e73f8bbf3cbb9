"""LLM summarizers over the official `anthropic` and `openai` SDKs, and the one a hub uses.

Each asks its model for JSON (summary, key points, entities, relationships), with a timeout and
no retries: a model that is slow, down or answers nonsense raises `SummarizerUnavailable`, and
`summarizer_from` wraps it so the offline summarizer answers instead. Entities and relationships
found by rules are always added (they cost nothing and are exact)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hub.extract import Found, Link, extract
from hub.summarize import (
    FallingBack,
    Material,
    OfflineSummarizer,
    Summarizer,
    SummarizerUnavailable,
    Summary,
)
from transports.models.providers import CHATGPT, CLAUDE

VERSION = "1"
DEFAULT_TIMEOUT_S = 20.0
INSTRUCTIONS = (
    "Summarize this work session for another AI assistant that takes over. Answer only a JSON "
    'object: {"summary": "<3 sentences>", "keyPoints": ["..."], "entities": [{"name": "...", '
    '"type": "person|file|repo|project|todo|url|date|other", "confidence": 0.0-1.0}], '
    '"relationships": [{"source": "...", "target": "...", "type": "mentions|works-on|'
    'depends-on", "confidence": 0.0-1.0}]}'
)


def transcript(material: Material) -> str:
    """The material as the text a model reads."""
    out = [f"[{x.role}{' ' + x.author if x.author else ''}] {x.text}" for x in material.lines]
    out += [f"[file] {path}" for path in material.files]
    out += [f"[todo {t.status}] {t.content}" for t in material.todos]
    return "\n".join(out) or "(empty)"


def parse_answer(text: str, material: Material, name: str, model: str) -> Summary:
    """A model's JSON answer as a `Summary` (rule-based entities added); nonsense raises."""
    start, end = text.find("{"), text.rfind("}")
    try:
        body = json.loads(text[start : end + 1])
        summary = str(body["summary"]).strip()
        points = tuple(str(p)[:2000] for p in body.get("keyPoints") or [])
        entities = [
            Found(str(e["name"])[:200], str(e.get("type") or "other")[:50], _unit(e))
            for e in body.get("entities") or []
        ]
        links = [
            Link(str(r["source"])[:200], str(r["target"])[:200], str(r["type"])[:50], _unit(r))
            for r in body.get("relationships") or []
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise SummarizerUnavailable(f"{model} answered no summary JSON ({error})") from None
    if not summary:
        raise SummarizerUnavailable(f"{model} answered an empty summary")
    found, linked = extract(material)
    named = {(e.name, e.type) for e in found}
    related = {(r.source, r.target, r.type) for r in linked}
    return Summary(
        summary=summary,
        key_points=points,
        entities=(*found, *(e for e in entities if (e.name, e.type) not in named)),
        relationships=(*linked, *(r for r in links if (r.source, r.target, r.type) not in related)),
        confidence=0.8,
        summarizer=name,
        version=f"{VERSION}/{model}",
        content_hash=material.digest(),
    )


def _unit(item: Mapping[str, Any]) -> float:
    try:
        return min(1.0, max(0.0, float(item.get("confidence", 0.7))))
    except (TypeError, ValueError):
        return 0.7


class AnthropicSummarizer:
    """Claude through the Messages API (`anthropic` SDK, its `base_url` honoured)."""

    name = "anthropic"

    def __init__(self, api_key: str, base_url: str | None, model: str, timeout_s: float) -> None:
        import anthropic

        self.model = model
        self.version = f"{VERSION}/{model}"
        self._errors = anthropic.APIError
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    def summarize(self, material: Material) -> Summary:
        try:
            answer = self._client.messages.create(
                model=self.model,
                max_tokens=1024,
                system=INSTRUCTIONS,
                messages=[{"role": "user", "content": transcript(material)}],
            )
        except self._errors as error:
            raise SummarizerUnavailable(f"{type(error).__name__}: {error}") from None
        text = "".join(getattr(block, "text", "") for block in answer.content)
        return parse_answer(text, material, self.name, self.model)


class OpenAISummarizer:
    """A GPT model through Chat Completions (`openai` SDK, its `base_url` honoured)."""

    name = "openai"

    def __init__(self, api_key: str, base_url: str | None, model: str, timeout_s: float) -> None:
        import openai

        self.model = model
        self.version = f"{VERSION}/{model}"
        self._errors = openai.OpenAIError
        self._client = openai.OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    def summarize(self, material: Material) -> Summary:
        try:
            answer = self._client.chat.completions.create(
                model=self.model,
                response_format={"type": "json_object"},
                messages=[
                    {"role": "system", "content": INSTRUCTIONS},
                    {"role": "user", "content": transcript(material)},
                ],
            )
        except self._errors as error:
            raise SummarizerUnavailable(f"{type(error).__name__}: {error}") from None
        text = answer.choices[0].message.content or "" if answer.choices else ""
        return parse_answer(text, material, self.name, self.model)


def summarizer_from(env: Mapping[str, str]) -> Summarizer:
    """The hub's summarizer from its adapters' variables: Claude if ANTHROPIC_API_KEY is set,
    else OpenAI if OPENAI_API_KEY is, each falling back to the offline one; else offline.
    CHITTY_ANTHROPIC_API_URL / CHITTY_OPENAI_API_URL (or the SDKs' own ANTHROPIC_BASE_URL /
    OPENAI_BASE_URL) point them elsewhere, CHITTY_ANTHROPIC_MODEL / CHITTY_OPENAI_MODEL
    pick the model (`transports.models.providers`); CHITTY_SUMMARIZER_TIMEOUT_S bounds a call."""
    offline = OfflineSummarizer()
    timeout_s = float(env.get("CHITTY_SUMMARIZER_TIMEOUT_S") or DEFAULT_TIMEOUT_S)
    if CLAUDE.api_key(env):
        primary: Summarizer = AnthropicSummarizer(
            CLAUDE.api_key(env), CLAUDE.base_url(env), CLAUDE.model(env), timeout_s
        )
    elif CHATGPT.api_key(env):
        primary = OpenAISummarizer(
            CHATGPT.api_key(env), CHATGPT.base_url(env), CHATGPT.model(env), timeout_s
        )
    else:
        return offline
    return FallingBack(primary, offline)
