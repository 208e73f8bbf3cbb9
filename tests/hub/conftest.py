"""`hub/` is the pure domain: its tests must never start Ray."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType

import pytest


class _RayBlocker(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "ray" or fullname.startswith("ray."):
            raise ImportError(f"hub/ tests must not use Ray (tried to import {fullname!r})")
        return None


def _forbidden_init(*args: object, **kwargs: object) -> None:
    raise RuntimeError("ray.init() called from a hub/ unit test: hub/ must stay free of Ray")


@pytest.fixture(autouse=True)
def forbid_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make `ray.init` raise (and a fresh `import ray` fail) for every test under tests/hub."""
    if "ray" in sys.modules:  # imported by another part of the suite earlier in the session
        monkeypatch.setattr(sys.modules["ray"], "init", _forbidden_init)
        yield
        return
    blocker = _RayBlocker()
    sys.meta_path.insert(0, blocker)
    try:
        yield
    finally:
        sys.meta_path.remove(blocker)
