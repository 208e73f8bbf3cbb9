"""When a session's context is summarized again: once it has changed enough, and gone quiet.

A debounce, not a timer per write: writes only note the session's size; `due` picks the
sessions whose material moved by `min_chars` since their last summary and that have been
quiet for `quiet_s` (or waited `max_wait_s` while busy)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Pending:
    first_s: float
    last_s: float
    size: int


@dataclass
class Resummarize:
    min_chars: int = 200
    quiet_s: float = 5.0
    max_wait_s: float = 60.0
    summarized: dict[str, int] = field(default_factory=dict)  # session -> size at its summary
    pending: dict[str, _Pending] = field(default_factory=dict)

    def changed(self, session_id: str, size: int, now_s: float) -> None:
        """A session's material is now `size` characters long."""
        if abs(size - self.summarized.get(session_id, 0)) < self.min_chars:
            self.pending.pop(session_id, None)
            return
        known = self.pending.get(session_id)
        first = known.first_s if known else now_s
        self.pending[session_id] = _Pending(first, now_s, size)

    def due(self, now_s: float) -> list[str]:
        """The sessions to summarize now (quiet long enough, or waited too long)."""
        return [
            session
            for session, p in self.pending.items()
            if now_s - p.last_s >= self.quiet_s or now_s - p.first_s >= self.max_wait_s
        ]

    def done(self, session_id: str) -> None:
        """`session_id` was summarized at its pending size."""
        pending = self.pending.pop(session_id, None)
        if pending is not None:
            self.summarized[session_id] = pending.size
