"""A collaborative text field: concurrent edits merge through Y-CRDT (pycrdt).

A full new value is diffed against the text its writer had seen (the edits its vector clock
covers), not against the current text, so concurrent full-value writes keep each other's changes.
"""

from __future__ import annotations

import difflib
import hashlib
from typing import Any

from pycrdt import Doc, Text, TransactionEvent

from hub.clocks.vector import VectorClock
from hub.record import record

_ROOT = "text"


def _key(kind: bytes, parts: list[bytes]) -> bytes:
    digest = hashlib.sha256(kind)
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()[:16]


def _client_id(key: bytes) -> int:
    # Y client ids are unsigned 53-bit integers (what JavaScript's numbers hold exactly).
    return int.from_bytes(key[:8], "big") >> 11


def _doc(update: bytes, client_id: int | None = None) -> tuple[Doc[Any], Text]:
    doc: Doc[Any] = Doc() if client_id is None else Doc(client_id=client_id)
    if update:
        doc.apply_update(update)
    return doc, doc.get(_ROOT, type=Text)


@record
class TextEdit:
    """One write's change to a text field: its writer's dot, a key naming it, its Y update.

    The key is the same on every replica and in every arrival order: of a full new value, a
    digest of the edits it was made on and of the value (its Y client id derives from it); of a
    Y update, a digest of the update. Count 0 is an edit every writer is taken to have seen.
    """

    node: str
    count: int
    key: bytes
    update: bytes

    @property
    def order(self) -> tuple[bytes, str, int]:
        return (self.key, self.node, self.count)

    def seen_by(self, node: str, clock: VectorClock) -> bool:
        """Whether a write by `node` with `clock` (which counts that write itself) had seen it."""
        known = clock.get_count(self.node)
        if self.node == node:
            known -= 1  # the write's own dot is the write, not something it had seen
        return self.count == 0 or self.count <= known


def _union(*groups: tuple[TextEdit, ...]) -> tuple[TextEdit, ...]:
    """The edits of every group, once each, in canonical order."""
    edits: list[TextEdit] = []
    for edit in sorted((e for group in groups for e in group), key=lambda e: (e.order, e.update)):
        if not edits or edits[-1].order != edit.order:
            edits.append(edit)
    return tuple(edits)


@record
class TextField:
    """The whole Y document of one text field, encoded as an update, and the edits that made it.

    `edits` is in canonical order. A field with a document and no edits (a snapshot from before
    edits were recorded) counts its whole document as one edit that every writer had seen.
    Equal fields have the same document and edits (their updates' bytes may differ).
    """

    update: bytes = b""
    edits: tuple[TextEdit, ...] = ()

    @classmethod
    def of(cls, text: str, node: str) -> TextField:
        return cls().edit(text, node)

    @property
    def text(self) -> str:
        return str(_doc(self.update)[1])

    @property
    def recorded(self) -> tuple[TextEdit, ...]:
        """The edits that made the document."""
        if self.edits or not self.update:
            return self.edits
        return (TextEdit("", 0, _key(b"y", [self.update]), self.update),)

    def edit(self, new_text: str, node: str, clock: VectorClock | None = None) -> TextField:
        """Turn the text the writer had seen into `new_text` with the smallest inserts and
        deletes, made as a write by `node` with vector clock `clock` (counting the write; None:
        a write that has seen everything), and fold that into the current document."""
        edits = self.recorded
        seen = edits if clock is None else tuple(e for e in edits if e.seen_by(node, clock))
        everything = len(seen) == len(edits)
        encoded = new_text.encode("utf-8", "surrogatepass")
        key = _key(b"e", [*sorted({e.key for e in seen}), encoded])
        # The Y client id follows from the base and the value alone: two writes that make the
        # same edit on the same text make the same Y items, which merge as one (an echo).
        doc, text = _doc(self.update if everything else b"", _client_id(key))
        if not everything:
            for edit in seen:
                doc.apply_update(edit.update)
        old = str(text)
        if old == new_text:
            return self
        made: list[bytes] = []

        def record(event: TransactionEvent) -> None:
            made.append(event.update)

        subscription = doc.observe(record)
        ops = difflib.SequenceMatcher(a=old, b=new_text, autojunk=False).get_opcodes()
        with doc.transaction():
            for tag, i1, i2, j1, j2 in reversed(ops):  # back to front keeps indices valid
                if tag in ("replace", "delete"):
                    del text[i1:i2]
                if tag in ("replace", "insert"):
                    text.insert(i1, new_text[j1:j2])
        doc.unobserve(subscription)
        update = made[0]  # one transaction, one update
        if not everything:
            doc, _ = _doc(self.update)
            doc.apply_update(update)
        count = clock.get_count(node) if clock is not None else 0
        return TextField(doc.get_update(), _union(edits, (TextEdit(node, count, key, update),)))

    def apply(self, update: bytes, node: str = "", clock: VectorClock | None = None) -> TextField:
        """Fold in a Y update made elsewhere (e.g. by a collaborative editor), as a write by
        `node` with vector clock `clock` (None: one every later writer is taken to have seen)."""
        if not update:
            return self
        doc, _ = _doc(self.update)
        doc.apply_update(update)
        count = clock.get_count(node) if clock is not None else 0
        edit = TextEdit(node, count, _key(b"y", [update]), update)
        return TextField(doc.get_update(), _union(self.recorded, (edit,)))

    def merge(self, other: TextField) -> TextField:
        if not other.recorded:  # an empty field (no document, no edits)
            return self
        if not self.recorded:
            return other
        doc, _ = _doc(self.update)
        if other.update:
            doc.apply_update(other.update)
        return TextField(doc.get_update(), _union(self.recorded, other.recorded))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TextField):
            return NotImplemented
        if [e.order for e in self.recorded] != [e.order for e in other.recorded]:
            return False
        a, b = _doc(self.update)[0], _doc(other.update)[0]
        return a.get_update() == b.get_update()

    def __hash__(self) -> int:
        return hash(_doc(self.update)[0].get_update())
