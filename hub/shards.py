"""The versioned shard table: entity -> shard -> host, by rendezvous hashing over live hosts."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType


def _hash64(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


def shard_of(entity_id: str, shards: int) -> int:
    """The shard an entity belongs to: stable across processes, nodes and restarts."""
    return _hash64(entity_id) % shards


def _owner(shard: int, hosts: Iterable[str]) -> str:
    # Rendezvous (highest random weight): losing a host moves only that host's shards.
    return max(hosts, key=lambda host: (_hash64(str(shard), host), host))


class ShardTableError(ValueError):
    """A shard table that cannot be built or read."""


@dataclass(frozen=True, slots=True)
class ShardTable:
    """Which host owns each shard, plus entities placed on a dedicated host of their own."""

    version: int
    hosts: tuple[str, ...]
    owners: tuple[str, ...]  # shard -> host
    dedicated: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def build(cls, hosts: Iterable[str], shards: int, version: int = 1) -> ShardTable:
        live = tuple(sorted(set(hosts)))
        if not live:
            raise ShardTableError("a shard table needs at least one host")
        if shards < 1:
            raise ShardTableError(f"shards must be >= 1, got {shards}")
        return cls(version, live, tuple(_owner(s, live) for s in range(shards)))

    @property
    def shards(self) -> int:
        return len(self.owners)

    def host_of(self, entity_id: str) -> str:
        """The host that owns `entity_id` now."""
        dedicated = self.dedicated.get(entity_id)
        if dedicated is not None:
            return dedicated
        return self.owners[shard_of(entity_id, self.shards)]

    def with_hosts(self, hosts: Iterable[str]) -> ShardTable:
        """The next version, with shards spread over `hosts` (dedicated placements kept)."""
        rebuilt = ShardTable.build(hosts, self.shards, self.version + 1)
        return replace(rebuilt, dedicated=self.dedicated)

    def with_dedicated(self, entity_id: str, host: str | None) -> ShardTable:
        """The next version, with `entity_id` on its own `host` (None: back to its shard)."""
        placed = dict(self.dedicated)
        if host is None:
            placed.pop(entity_id, None)
        else:
            placed[entity_id] = host
        return replace(self, version=self.version + 1, dedicated=MappingProxyType(placed))

    def moved(self, newer: ShardTable) -> list[int]:
        """Shards whose owner differs in `newer`."""
        return [s for s, (a, b) in enumerate(zip(self.owners, newer.owners, strict=True)) if a != b]

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "hosts": list(self.hosts),
                "owners": list(self.owners),
                "dedicated": dict(self.dedicated),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ShardTable:
        try:
            raw = json.loads(text)
            table = cls(
                int(raw["version"]),
                tuple(raw["hosts"]),
                tuple(raw["owners"]),
                MappingProxyType(dict(raw["dedicated"])),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ShardTableError(f"unreadable shard table: {error}") from None
        unknown = set(table.owners) - set(table.hosts)
        if not table.owners or unknown:
            raise ShardTableError(f"shard table names hosts it does not list: {sorted(unknown)}")
        return table

    def save(self, path: Path) -> None:
        """Write atomically: a reader sees the old table or the new one, never half of one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "w", encoding="utf-8") as out:
            out.write(self.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> ShardTable | None:
        """The saved table, or None when there is none yet."""
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
