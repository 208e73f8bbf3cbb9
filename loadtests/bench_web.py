"""The web UI's Board in headless Chromium (Debian's `chromium`, driven by Playwright):
how long a board of N todos takes to render, and how long a change made over REST takes to
reach an open board (from sending the write to the card landing in its new column).

    python loadtests/bench_web.py                       # 5,000 todos, 200 changes
    python loadtests/bench_web.py --todos 500 --changes 50

It starts its own `chitty up` on a free loopback port with a throwaway data dir, or with
`--data DIR` a kept one: seeded on the first run, reused (same todos) by the next ones."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
ADMIN = f"bench-web-{secrets.token_urlsafe(32)}"  # a kept --data dir keeps its own


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_hub(data: Path, port: int) -> subprocess.Popen[bytes]:
    hub = subprocess.Popen(
        [sys.executable, "-m", "transports.cli", "up", "--data-dir", str(data / "data"),
         "--port", str(port), "--hosts", "1"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "CHITTY_ADMIN_TOKEN": ADMIN, "CHITTY_CONFIG_DIR": str(data / "config"),
             "CHITTY_NAMESPACE": f"bench-web-{port}"},
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
                if answer.status == 200:
                    return hub
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the hub did not become healthy in 180 s")


async def seed(base: str, todos: int) -> tuple[str, list[str]]:
    """A project, a session and `todos` todos in it: (project, todo ids)."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession(base + "/api/v1/", headers=headers) as http:

        async def post(path: str, body: dict[str, object]) -> str:
            while True:
                async with http.post(path, json=body) as answer:
                    if answer.status == 429:  # over the admin's rate: wait as told
                        await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
                        continue
                    assert answer.status == 201, await answer.text()
                    return str((await answer.json())["entity"]["chittyId"])

        project = await post("projects", {"name": "Benchmark board"})
        session = await post("sessions", {"platform": "cli", "projectId": project})
        made: list[str] = []
        gate = asyncio.Semaphore(16)

        async def one(n: int) -> None:
            async with gate:
                body = {"content": f"Todo {n}", "sessionId": session, "projectId": project}
                made.append(await post("todos", body))

        await asyncio.gather(*(one(n) for n in range(todos)))
        return project, made


def patch(base: str, todo: str, status: str) -> None:
    request = urllib.request.Request(
        f"{base}/api/v1/todos/{todo}",
        data=f'{{"status": "{status}"}}'.encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


# Records, for each card that lands in a column, when (epoch ms, the page's clock).
WATCH = """() => {
  window.landed = {};
  new MutationObserver((changes) => {
    const now = performance.timeOrigin + performance.now();
    for (const change of changes) for (const node of change.addedNodes) {
      const column = node.closest && node.closest('.column');
      if (node.dataset && node.dataset.id && column) {
        window.landed[node.dataset.id + ' ' + column.dataset.status] = now;
      }
    }
  }).observe(document.querySelector('.columns'), {childList: true, subtree: true});
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--todos", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--renders", type=int, default=5, help="board loads to time")
    parser.add_argument("--data", type=Path, help="a data dir to keep and reuse between runs")
    args = parser.parse_args()
    global ADMIN
    executable = os.environ.get("CHITTY_CHROMIUM") or shutil.which("chromium")
    if executable is None:
        raise SystemExit("no chromium: apt-get install -y chromium")
    with contextlib.ExitStack() as stack:
        tmp = args.data or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        seeded = tmp / "seed.json"
        kept = json.loads(seeded.read_text()) if seeded.exists() else None
        if kept is not None:
            ADMIN = kept["admin"]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        hub = start_hub(tmp, port)
        try:
            if kept is None:
                began = time.monotonic()
                project, todos = asyncio.run(seed(base, args.todos))
                print(f"seeded {len(todos)} todos in {time.monotonic() - began:.1f} s")
                kept = {"admin": ADMIN, "project": project, "todos": todos}
                seeded.write_text(json.dumps(kept))
            project, todos = kept["project"], kept["todos"]
            args.todos = len(todos)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=executable, headless=True)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(base + "/")
                page.get_by_label("Hub token").fill(ADMIN)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_selector("#live.on")
                renders = []
                for n in range(args.renders):
                    page.goto(f"{base}/#/adapters")
                    page.wait_for_selector("h1:has-text('Adapters')")
                    began = time.monotonic()
                    page.evaluate(f"() => {{ location.hash = '#/board/{project}'; }}")
                    page.wait_for_function(
                        f"() => document.querySelectorAll('.card').length === {args.todos}",
                        polling="raf",
                        timeout=120_000,
                    )
                    renders.append((time.monotonic() - began) * 1000)
                    print(f"render {n + 1}: {renders[-1]:.0f} ms")
                page.evaluate(WATCH)
                latencies = []
                for n in range(args.changes):
                    todo = todos[(n * 7919) % len(todos)]
                    status = "in_progress" if n % 2 == 0 else "blocked"
                    sent = time.time() * 1000
                    patch(base, todo, status)
                    key = f"{todo} {status}"
                    page.wait_for_function(
                        f"() => window.landed['{key}'] !== undefined", polling="raf"
                    )
                    latencies.append(page.evaluate(f"() => window.landed['{key}']") - sent)
                browser.close()
        finally:
            os.killpg(hub.pid, signal.SIGINT)
            hub.wait(60)
    latencies.sort()
    p99 = latencies[max(0, round(0.99 * len(latencies)) - 1)]
    print(
        f"todos={args.todos} render_ms median={statistics.median(renders):.0f} "
        f"max={max(renders):.0f} | changes={len(latencies)} change_to_board_ms "
        f"p50={statistics.median(latencies):.0f} p99={p99:.0f} max={latencies[-1]:.0f}"
    )


if __name__ == "__main__":
    main()
