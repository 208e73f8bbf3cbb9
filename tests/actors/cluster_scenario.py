"""A multi-node scenario run in its own process (a driver joins one Ray cluster only).

Three raylets on this machine (`ray.cluster_utils.Cluster`): hosts spread over the nodes,
messages are routed across them, and removing a node re-hosts its shards. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import sys
import tempfile
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from actors.runtime import Runtime
from hub.envelope import Status
from hub.ids import IdGenerator, Kind
from hub.settings import HubSettings
from hub.store import generate_key
from tests.messages import create_todo, sync_message

WATCHDOG_S = 240  # under the test's own limit, so a hang prints every thread's stack


def step(what: str) -> None:
    """Say on stderr what the scenario does now (the test shows it when the scenario fails)."""
    print(f"{time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


def main() -> None:
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    step("starting three raylets")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="cluster-test", log_to_driver=False)
    data = Path(tempfile.mkdtemp())
    step("starting the hub")
    runtime = Runtime.start(
        HubSettings(
            data_dir=data,
            namespace="cluster-test",
            hosts=3,
            shards=32,
            call_timeout_s=90,
            encryption_key=generate_key().hex(),  # encrypted, as by default; no key of the user's
        )
    )
    result: dict[str, object] = {}
    try:
        nodes = {name: ray.get(h.node()) for name, h in runtime.hosts.items()}
        result["host_nodes"] = len(set(nodes.values()))
        step("creating todos")
        ids = IdGenerator("cluster", now_ms=lambda: time.time_ns() // 1_000_000)
        todos = [ids.new(Kind.TODO) for _ in range(120)]
        created = asyncio.run(
            runtime.submit([create_todo(t, f"todo {i}", node="a") for i, t in enumerate(todos)])
        )
        result["created"] = sum(o.status is Status.APPLIED for o in created)
        per_host: dict[str, int] = {}
        for todo in todos:
            per_host[runtime.table.host_of(todo)] = per_host.get(runtime.table.host_of(todo), 0) + 1
        result["hosts_used"] = len(per_host)
        # Remove a worker node that carries a host.
        worker_ids = {w.node_id: w for w in workers}
        victim_host, victim_node = next((h, n) for h, n in nodes.items() if n in worker_ids)
        step("removing a node")
        cluster.remove_node(worker_ids[victim_node])
        step("updating the moved todos")
        moved = [t for t in todos if runtime.table.host_of(t) == victim_host]
        started = time.monotonic()
        updated = asyncio.run(
            runtime.submit(
                [
                    sync_message(t, data={"activeForm": "after"}, node="b", clock={"a": 1, "b": 1})
                    for t in moved
                ]
            )
        )
        result["rehost_seconds"] = round(time.monotonic() - started, 1)
        result["moved"] = len(moved)
        result["updated_after_removal"] = sum(o.status is Status.APPLIED for o in updated)
        result["victim_new_node_differs"] = (
            ray.get(runtime.hosts[victim_host].node()) != victim_node
        )
        step("reading them back")
        views = [asyncio.run(runtime.get(t)) for t in moved]
        result["state_intact"] = all(
            v is not None
            and v.entity["content"] == f"todo {todos.index(t)}"
            and v.entity["activeForm"] == "after"
            for t, v in zip(moved, views, strict=True)
        )
    finally:
        step("stopping the hub")
        runtime.shutdown()
        ray.shutdown()
        step("stopping the raylets")
        cluster.shutdown()
        step("done")
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
