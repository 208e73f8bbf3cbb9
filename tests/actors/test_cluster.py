"""Several raylets on this machine: hosts spread, cross-node routing, a removed node re-hosted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(360)  # the scenario's watchdog (240 s) prints its stacks before this
def test_hosts_spread_route_across_nodes_and_survive_a_node_removal() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.actors.cluster_scenario"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["host_nodes"] >= 2  # hosts spread over nodes
    assert result["created"] == 120 and result["hosts_used"] == 3  # routed to every host
    assert result["moved"] > 0
    assert result["updated_after_removal"] == result["moved"]  # its shards are hosted again
    assert result["victim_new_node_differs"]
    assert result["state_intact"]
