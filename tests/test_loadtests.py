"""A few seconds of `loadtests/run.py` (Locust, loopback only) so the locustfile cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAST_LINE = re.compile(r"throughput_msgs_per_s=(\d+) p99_ms=([\d.]+) lost=(\d+)")


def smoke(target: str, out: Path, roles: tuple[str, ...]) -> re.Match[str]:
    command = [
        sys.executable, str(ROOT / "loadtests" / "run.py"), "--target", target, "--out", str(out),
        "--duration", "3", "--drain", "2", "--publishers", "1", "--subscribers", "1",
        "--rest-writers", "1", "--batch", "10", "--pool", "8", "--projects", "2",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    found = LAST_LINE.fullmatch(lines[-1])
    assert found, done.stdout
    assert "errors=0 gaps=0" in done.stdout, done.stdout
    cpu = re.search(rf"\[{target}\] CPU while publishing .*per acked write; (.*?)\)", done.stdout)
    assert cpu, done.stdout
    split = dict(part.rsplit(" ", 1) for part in cpu.group(1).split(", "))
    assert set(roles) <= split.keys(), cpu.group(0)  # the server's CPU, by process
    assert (out / f"{target}_stats.csv").read_text().count("E2E") == 1  # the latency row
    return found


def test_the_locust_users_run_against_the_baseline_server(tmp_path: Path) -> None:
    throughput, _, lost = smoke("baseline", tmp_path, ("main",)).groups()
    assert int(throughput) > 0 and int(lost) == 0


@pytest.mark.slow
def test_the_locust_users_run_against_a_hub_and_lose_nothing(tmp_path: Path) -> None:
    roles = ("main", "HostActor", "BrokerActor", "RouterActor")
    throughput, _, lost = smoke("hub", tmp_path, roles).groups()
    assert int(throughput) > 0 and int(lost) == 0


def test_the_pipeline_benchmark_times_every_stage_of_real_writes() -> None:
    """`loadtests/bench_pipeline.py` runs the hub's write path in process (a real LMDB store);
    it refuses to time writes that were not applied, so a figure always stands for real work."""
    command = [
        sys.executable, str(ROOT / "loadtests" / "bench_pipeline.py"),
        "--rounds", "2", "--publishers", "2", "--pool", "8", "--batch", "10",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.findall(r"^(\w[\w -]*?)\s+([\d.]+)\s+([\d.]+)\s+(?:([\d.]+)x|-)", done.stdout, re.M)
    rows = {stage: (float(hub), float(floor), ratio) for stage, hub, floor, ratio in found}
    stages = {"gateway parse", "gateway envelopes", "host turn", "host pack", "broker", "fan-out"}
    assert set(rows) == {*stages, "total"}, done.stdout
    assert all(hub > 0 for hub, _, _ in rows.values()), done.stdout
    # The floor stands beside the stages it corresponds to, measured in the same run.
    for stage in ("gateway parse", "host turn", "fan-out"):
        assert rows[stage][1] > 0 and float(rows[stage][2]) > 0, done.stdout
    hub, floor, ratio = rows["total"]
    assert float(ratio) == pytest.approx(hub / floor, rel=0.05), done.stdout
    assert "(40 writes)" in done.stdout  # 2 rounds x 2 publishers x 10, the pools made first
