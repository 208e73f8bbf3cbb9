"""Suite-wide pytest configuration."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# CI machines are shared and noisy: no deadlines on property tests, more examples in CI.
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session", autouse=True)
def _user_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The per-user files the CLI and a hub keep (where `chitty up` runs, each directory's
    current project and session; the user's encryption key under the config dir) go to temp
    dirs for the whole run, never to the user's own (subprocesses too)."""
    places = {
        "CHITTY_STATE_DIR": str(tmp_path_factory.mktemp("chitty-state")),
        "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("config-home")),
    }
    before = {name: os.environ.get(name) for name in places}
    os.environ.update(places)
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """One local Ray for the whole session (tests that need Ray ask for it)."""
    import ray

    from actors.ray_start import init_ray

    if not ray.is_initialized():
        init_ray(num_cpus=2)  # our own Ray, even when another one runs on this machine
    yield
    ray.shutdown()
