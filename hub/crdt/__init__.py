"""State-based CRDTs: every merge is pure, commutative, associative and idempotent."""

from hub.crdt.lww import CausalLWW, LWWRegister
from hub.crdt.mvregister import MVRegister
from hub.crdt.orset import ORSet, Tag
from hub.crdt.text import TextEdit, TextField

__all__ = ["CausalLWW", "LWWRegister", "MVRegister", "ORSet", "Tag", "TextEdit", "TextField"]
