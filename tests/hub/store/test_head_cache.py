"""The head cache is trusted only while this process's commits are consecutive."""

from __future__ import annotations

from hub.store.chain import ChainHead
from hub.store.head_cache import HeadCache

HEAD = ChainHead(3, b"\x01" * 32, 100)


def test_heads_are_kept_while_commits_are_consecutive() -> None:
    cache = HeadCache(10)
    cache.appended(5, {"a": HEAD})
    assert cache.view(6) == {"a": HEAD}
    cache.committed_elsewhere(6)  # a snapshot write of ours
    assert cache.view(7) == {"a": HEAD}


def test_a_foreign_commit_empties_the_cache() -> None:
    cache = HeadCache(10)
    cache.appended(5, {"a": HEAD})
    assert cache.view(7) == {}  # transaction 6 was someone else's
    cache.committed_elsewhere(8)  # does not make the cache trusted again
    cache.appended(8, {"b": HEAD})
    assert cache.view(9) == {"b": HEAD}


def test_capacity_bounds_the_cache() -> None:
    cache = HeadCache(2)
    cache.appended(1, {"a": HEAD, "b": HEAD})
    cache.appended(2, {"c": HEAD})
    assert cache.view(3) == {"c": HEAD}
    disabled = HeadCache(0)
    disabled.appended(1, {"a": HEAD})
    assert disabled.view(2) == {}
