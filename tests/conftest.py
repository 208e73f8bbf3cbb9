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
def _cli_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The CLI's per-user files (where `chitty up` runs, each directory's current project and
    session) go to a temp dir for the whole run, never to the user's own (subprocesses too)."""
    before = os.environ.get("CHITTY_STATE_DIR")
    os.environ["CHITTY_STATE_DIR"] = str(tmp_path_factory.mktemp("chitty-state"))
    yield
    if before is None:
        os.environ.pop("CHITTY_STATE_DIR", None)
    else:
        os.environ["CHITTY_STATE_DIR"] = before


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """One local Ray for the whole session (tests that need Ray ask for it)."""
    import ray

    from actors.runtime import init_ray

    if not ray.is_initialized():
        init_ray(num_cpus=2)  # our own Ray, even when another one runs on this machine
    yield
    ray.shutdown()
