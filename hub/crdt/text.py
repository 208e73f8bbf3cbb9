"""A collaborative text field: concurrent edits merge through Y-CRDT (pycrdt)."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, Text

_ROOT = "text"


def _client_id(node: str) -> int:
    # Y client ids are unsigned 53-bit integers; derive a stable one per node.
    return (
        int.from_bytes(hashlib.sha256(node.encode("utf-8", "surrogatepass")).digest()[:6], "big")
        >> 1
    )


def _doc(update: bytes, node: str | None = None) -> tuple[Doc[Any], Text]:
    doc: Doc[Any] = Doc() if node is None else Doc(client_id=_client_id(node))
    if update:
        doc.apply_update(update)
    return doc, doc.get(_ROOT, type=Text)


@dataclass(frozen=True, slots=True)
class TextField:
    """The whole Y document of one text field, encoded as an update."""

    update: bytes = b""

    @classmethod
    def of(cls, text: str, node: str) -> TextField:
        return cls().edit(text, node)

    @property
    def text(self) -> str:
        return str(_doc(self.update)[1])

    def edit(self, new_text: str, node: str) -> TextField:
        """Turn the text into `new_text` with the smallest inserts and deletes, as `node`."""
        doc, text = _doc(self.update, node)
        old = str(text)
        if old == new_text:
            return self
        ops = difflib.SequenceMatcher(a=old, b=new_text, autojunk=False).get_opcodes()
        with doc.transaction():
            for tag, i1, i2, j1, j2 in reversed(ops):  # back to front keeps indices valid
                if tag in ("replace", "delete"):
                    del text[i1:i2]
                if tag in ("replace", "insert"):
                    text.insert(i1, new_text[j1:j2])
        return TextField(doc.get_update())

    def apply(self, update: bytes) -> TextField:
        """Fold in a Y update made elsewhere (e.g. by a collaborative editor)."""
        return self.merge(TextField(update))

    def merge(self, other: TextField) -> TextField:
        doc, _ = _doc(self.update)
        if other.update:
            doc.apply_update(other.update)
        return TextField(doc.get_update())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TextField):
            return NotImplemented
        a, b = _doc(self.update)[0], _doc(other.update)[0]
        return a.get_update() == b.get_update()

    def __hash__(self) -> int:
        return hash(_doc(self.update)[0].get_update())
