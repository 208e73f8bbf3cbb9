"""Named entities and their relationships by rules, each with a confidence (no model).

Found: ChittyIDs, @mentions, people (message authors), URLs, emails, repos, file paths, dates
(`dateparser`, anchored to the material's `now`) and phone numbers (`phonenumbers`). Linked:
an author `mentions` whom and what they name, `works-on` the files and repos they touch, and
`depends-on` where a sentence says so ("A depends on / needs / is blocked by B") or a todo
lists a dependency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.summarize import Material

CHITTY_ID = re.compile(r"\bCHITTY-[A-Z]+-[0-9A-Za-z]+\b")
MENTION = re.compile(r"(?<![\w.@])@([A-Za-z][\w.-]{0,38}[\w])")
URL = re.compile(r"\bhttps?://[^\s<>()\"'`]+[^\s<>()\"'`.,;:!?]")
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
REPO_URL = re.compile(
    r"(?:github\.com|gitlab\.com|bitbucket\.org)[/:]([\w.-]+/[\w.-]+?)(?:\.git)?(?=[/\s#?]|$)"
)
PATH = re.compile(
    r"(?<![\w/@.:-])(?:\.{1,2}/|/)?(?:[\w.-]+/)*[\w-]+\.(?:py|pyi|ts|tsx|js|jsx|go|rs|java|kt|"
    r"rb|c|h|cc|cpp|hpp|cs|swift|md|rst|txt|toml|yaml|yml|json|ini|cfg|sql|sh|html|css)\b"
)
DEPENDS = re.compile(r"\b(depends on|needs|requires|is blocked by|waits for)\b", re.IGNORECASE)
DATE_HINT = re.compile(
    r"\d|\b(today|tomorrow|yesterday|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"january|february|march|april|june|july|august|september|october|november|december)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Found:
    """A named entity: its name, type, the ChittyID it is (if any), and how sure we are."""

    name: str
    type: str
    confidence: float
    ref: str | None = None

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.ref:
            body["ref"] = self.ref
        return {**body, "confidence": self.confidence}


@dataclass(frozen=True, slots=True)
class Link:
    """A typed edge between two named entities (by name)."""

    source: str
    target: str
    type: str
    confidence: float

    def wire(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "type": self.type,
            "confidence": self.confidence,
        }


class _Found:
    """Entities and links in the order first seen; a repeat keeps the higher confidence."""

    def __init__(self) -> None:
        self.entities: dict[tuple[str, str], Found] = {}
        self.links: dict[tuple[str, str, str], Link] = {}

    def add(self, name: str, kind: str, confidence: float, ref: str | None = None) -> str:
        name = name[:200]
        known = self.entities.get((name, kind))
        if known is None or known.confidence < confidence:
            self.entities[(name, kind)] = Found(name, kind, confidence, ref)
        return name

    def link(self, source: str, target: str, kind: str, confidence: float) -> None:
        if source == target:
            return
        key = (source[:200], target[:200], kind)
        known = self.links.get(key)
        if known is None or known.confidence < confidence:
            self.links[key] = Link(key[0], key[1], kind, confidence)


def extract(material: Material) -> tuple[tuple[Found, ...], tuple[Link, ...]]:
    """Every entity the rules find in `material`, and the relationships between them."""
    found = _Found()
    for path in material.files:
        found.add(path, "file", 1.0)
    for line in material.lines:
        author = found.add(line.author, "person", 1.0, _ref(line.author)) if line.author else None
        named = _entities_of(found, line.text, material)
        if author is None:
            continue
        for name, kind in named:
            relation = {"file": "works-on", "repo": "works-on"}.get(kind, "mentions")
            if kind in ("date", "url", "email", "phone"):
                continue
            found.link(author, name, relation, 0.8 if relation == "works-on" else 0.9)
        for path in material.files:
            found.link(author, path, "works-on", 0.6)
    for todo in material.todos:
        found.add(todo.todo_id, "todo", 1.0, todo.todo_id)
        _entities_of(found, todo.content, material)
        for dependency in todo.dependencies:
            found.add(dependency, "todo", 1.0, dependency)
            found.link(todo.todo_id, dependency, "depends-on", 1.0)
    return tuple(found.entities.values()), tuple(found.links.values())


def _entities_of(found: _Found, text: str, material: Material) -> list[tuple[str, str]]:
    """Add what `text` names; the (name, type) of each, in order; `depends-on` sentences link."""
    named: list[tuple[str, str]] = []

    def add(name: str, kind: str, confidence: float, ref: str | None = None) -> None:
        named.append((found.add(name, kind, confidence, ref), kind))

    for match in CHITTY_ID.finditer(text):
        add(match.group(), _kind_of(match.group()), 1.0, match.group())
    emails = {m.group() for m in EMAIL.finditer(text)}
    for email in emails:
        add(email, "email", 0.95)
    for match in MENTION.finditer(text):
        if not any(match.group(1) in e for e in emails):
            add("@" + match.group(1), "person", 0.9)
    urls = [m.group() for m in URL.finditer(text)]
    for url in urls:
        add(url, "url", 0.95)
        repo = REPO_URL.search(url)
        if repo:
            add(repo.group(1), "repo", 0.9)
    for match in PATH.finditer(text):
        if not any(match.group() in u for u in urls) and "@" not in match.group():
            add(match.group(), "file", 0.8)
    for name, confidence in _dates(text, material):
        add(name, "date", confidence)
    for number in _phones(text):
        add(number, "phone", 0.85)
    _depends(found, text, named)
    return named


def _depends(found: _Found, text: str, named: list[tuple[str, str]]) -> None:
    """ "A depends on B": the last entity named before the verb depends on the first after."""
    for match in DEPENDS.finditer(text):
        before = [n for n, k in named if text.rfind(n.lstrip("@"), 0, match.start()) >= 0]
        after = [n for n, k in named if text.find(n.lstrip("@"), match.end()) >= 0]
        if before and after:
            found.link(before[-1], after[0], "depends-on", 0.7)


def _dates(text: str, material: Material) -> list[tuple[str, float]]:
    """Dates as ISO days: explicit ones (digits) sure, relative ones ("next Friday") less so."""
    if not DATE_HINT.search(text):
        return []
    from dateparser.search import search_dates  # type: ignore[import-untyped]

    settings: dict[str, Any] = {"PREFER_DATES_FROM": "future"}
    if material.now is not None:
        settings["RELATIVE_BASE"] = material.now.replace(tzinfo=None)
    hits = search_dates(text, languages=["en"], settings=settings) or []
    dates = []
    for said, when in hits:
        if not DATE_HINT.search(said) or len(said.strip()) < 3:
            continue  # "now", "may", "second": words, not dates
        dates.append((when.date().isoformat(), 0.9 if re.search(r"\d", said) else 0.7))
    return dates


def _phones(text: str) -> list[str]:
    import phonenumbers

    found = []
    for match in phonenumbers.PhoneNumberMatcher(text, "US"):
        found.append(phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164))
    return found


def _kind_of(chitty_id: str) -> str:
    """CHITTY-TODO-... is a todo, CHITTY-USER-... a person."""
    kind = chitty_id.split("-")[1].lower()
    return {"user": "person", "proj": "project", "msg": "message"}.get(kind, kind)


def _ref(author: str) -> str | None:
    return author if CHITTY_ID.fullmatch(author) else None
