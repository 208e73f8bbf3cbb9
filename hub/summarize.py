"""Context intelligence: what a summarizer reads, what it answers, and the offline default.

The offline summarizer needs no network and no downloaded data: sentences are split by pysbd's
rules, ranked by sumy's TextRank over our own word tokenizer (sumy's default tokenizer would
want NLTK's punkt data), and entities and relationships come from `hub.extract`'s rules.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from hub.extract import Found, Link, extract

OFFLINE_NAME = "offline-textrank"
OFFLINE_VERSION = "1"
SUMMARY_SENTENCES = 3
KEY_POINTS = 5
_WORD = re.compile(r"[\w'-]+")


@dataclass(frozen=True, slots=True)
class Line:
    """One utterance of the material: who said it (a ChittyID or a name), and what."""

    text: str
    author: str | None = None
    role: str = "user"


@dataclass(frozen=True, slots=True)
class OpenTodo:
    todo_id: str
    content: str
    status: str
    dependencies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Material:
    """Everything a context is summarized from (its sources' messages, files and todos).

    `now` anchors relative dates ("next Friday") so the same material gives the same answer."""

    lines: tuple[Line, ...] = ()
    files: tuple[str, ...] = ()
    todos: tuple[OpenTodo, ...] = ()
    now: datetime | None = None

    def digest(self) -> str:
        """The content hash results are cached under (sha256 of the canonical JSON)."""
        body = {
            "lines": [[x.role, x.author, x.text] for x in self.lines],
            "files": list(self.files),
            "todos": [[t.todo_id, t.content, t.status, list(t.dependencies)] for t in self.todos],
            "now": self.now.isoformat() if self.now else None,
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def size(self) -> int:
        """Characters of material: how much there is to summarize."""
        return sum(len(x.text) for x in self.lines) + sum(len(t.content) for t in self.todos)


@dataclass(frozen=True, slots=True)
class Summary:
    """A summarizer's answer for one material, and who produced it."""

    summary: str
    key_points: tuple[str, ...]
    entities: tuple[Found, ...]
    relationships: tuple[Link, ...]
    confidence: float
    summarizer: str
    version: str
    content_hash: str
    fallback_reason: str | None = None  # set when the configured summarizer failed

    def content(self) -> dict[str, Any]:
        """The context's `content` as the wire names it."""
        return {
            "summary": self.summary,
            "keyPoints": list(self.key_points),
            "entities": [e.wire() for e in self.entities],
            "relationships": [r.wire() for r in self.relationships],
        }

    def provenance(self) -> dict[str, Any]:
        """What the enrichment recording this summary holds."""
        body: dict[str, Any] = {
            "summarizer": self.summarizer,
            "version": self.version,
            "contentHash": self.content_hash,
        }
        if self.fallback_reason:
            body["fallbackReason"] = self.fallback_reason
        return body


class SummarizerUnavailable(Exception):
    """A summarizer could not answer (no network, a timeout, a refusal): fall back."""


class Summarizer(Protocol):
    """The seam: one material in, one summary out; raises `SummarizerUnavailable`."""

    name: str
    version: str

    def summarize(self, material: Material) -> Summary: ...


class _Words:
    """sumy's tokenizer interface over pysbd sentences and a plain word pattern."""

    language = "english"

    def to_sentences(self, paragraph: str) -> list[str]:
        return split_sentences(paragraph)

    def to_words(self, sentence: str) -> list[str]:
        return _WORD.findall(sentence)


def split_sentences(text: str) -> list[str]:
    """Sentences by pysbd's rules (no model, no downloaded data)."""
    import pysbd  # type: ignore[import-untyped]

    segmenter = pysbd.Segmenter(language="en", clean=False)
    return [s.strip() for s in segmenter.segment(text) if s.strip()]


def rank_sentences(sentences: Sequence[str], count: int) -> list[str]:
    """The `count` most central sentences by TextRank, in their original order."""
    if len(sentences) <= count:
        return list(sentences)
    # Imported here: sumy pulls in NLTK, about a second to import, which only summaries need.
    from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence  # type: ignore[import-untyped]
    from sumy.summarizers.text_rank import TextRankSummarizer  # type: ignore[import-untyped]
    from sumy.utils import get_stop_words  # type: ignore[import-untyped]

    words = _Words()
    document = ObjectDocumentModel([Paragraph([Sentence(s, words) for s in sentences])])
    ranker = TextRankSummarizer()
    ranker.stop_words = get_stop_words("english")
    best = {str(s) for s in ranker(document, count)}
    return [s for s in sentences if s in best][:count]


class OfflineSummarizer:
    """Extractive summary and key points by TextRank, entities and relationships by rules."""

    name = OFFLINE_NAME
    version = OFFLINE_VERSION

    def summarize(self, material: Material) -> Summary:
        sentences: list[str] = []
        for line in material.lines:
            for sentence in split_sentences(line.text):
                if sentence not in sentences:
                    sentences.append(sentence)
        open_todos = [t for t in material.todos if t.status not in ("completed", "cancelled")]
        lead = _lead(material, len(open_todos))
        ranked = rank_sentences(sentences, SUMMARY_SENTENCES)
        summary = " ".join([lead, *ranked]).strip()
        points = rank_sentences(sentences, KEY_POINTS)
        points += [f"Open todo: {t.content}" for t in open_todos][:KEY_POINTS]
        found, links = extract(material)
        return Summary(
            summary=summary,
            key_points=tuple(p[:2000] for p in points),
            entities=found,
            relationships=links,
            confidence=0.6 if sentences else 0.3,  # extractive: faithful, not a synthesis
            summarizer=self.name,
            version=self.version,
            content_hash=material.digest(),
        )


def _lead(material: Material, open_todos: int) -> str:
    """One line saying how much there is: messages, who, files, open todos."""
    if not (material.lines or material.files or material.todos):
        return "Nothing to summarize yet."
    authors = sorted({x.author for x in material.lines if x.author})
    parts = [f"{len(material.lines)} message(s)"]
    if authors:
        parts[0] += " by " + ", ".join(authors[:5])
    if material.files:
        parts.append("files: " + ", ".join(material.files[:5]))
    parts.append(f"{open_todos} open todo(s)")
    return "; ".join(parts) + "."


class FallingBack:
    """The configured summarizer, or the offline one whenever it cannot answer."""

    def __init__(self, primary: Summarizer, fallback: Summarizer) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = primary.name
        self.version = primary.version

    def summarize(self, material: Material) -> Summary:
        try:
            return self.primary.summarize(material)
        except SummarizerUnavailable as error:
            answer = self.fallback.summarize(material)
            reason = f"{self.primary.name}: {error}"[:500]
            return replace(answer, fallback_reason=reason)


@dataclass
class SummaryCache:
    """Answers by (summarizer, version, content hash); the oldest go first past `size`."""

    size: int = 256
    _items: OrderedDict[tuple[str, str, str], Summary] = field(default_factory=OrderedDict)

    def summarize(self, summarizer: Summarizer, material: Material) -> Summary:
        key = (summarizer.name, summarizer.version, material.digest())
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        answer = summarizer.summarize(material)
        if answer.fallback_reason is None:  # a fallback is retried next time
            self._items[key] = answer
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return answer
