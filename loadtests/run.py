"""Load-test the hub next to a bare aiohttp baseline, in one run, on loopback; print a summary.

Starts `chitty up` on a fresh data dir (and `loadtests/baseline_server.py`), runs Locust headless
against each with the same users, reads Locust's CSV and the users' ledgers, and prints sustained
msgs/s, E2E p50/p95/p99, errors and lost messages. The last line is always
`throughput_msgs_per_s=<n> p99_ms=<n> lost=<n>` (the hub's, or the baseline's if only it ran).

    python loadtests/run.py --duration 30 --publishers 4 --subscribers 2 --batch 100
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOCUSTFILE = HERE / "locustfile.py"
ADMIN_TOKEN_ENV = "CHITTY_ADMIN_TOKEN"  # the hub's pre-seeded admin token, read at start-up
LOAD_TOKEN_ENV = "CHITTY_LOAD_TOKEN"  # what the locustfile sends as `Authorization: Bearer`


@dataclass(frozen=True)
class Summary:
    """One target's figures for one run."""

    target: str
    acked: int
    rest_acked: int
    seconds: float
    delivered: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    e2e_count: int
    errors: int
    lost: int
    missed_deliveries: int
    gaps: int
    server_cpu_s: float = 0.0  # CPU of the server's whole session while Locust ran
    locust_cpu_s: float = 0.0
    wall_s: float = 0.0  # how long Locust ran
    window: CpuWindow | None = None  # CPU while every publisher was publishing

    @property
    def throughput(self) -> float:
        return self.acked / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        return [
            f"[{self.target}] acked writes: {self.acked} ({self.rest_acked} over REST) "
            f"in {self.seconds:.1f} s -> {self.throughput:,.0f} msgs/s",
            f"[{self.target}] events delivered to subscribers: {self.delivered} "
            f"({self.delivered / self.seconds if self.seconds else 0:,.0f}/s)",
            f"[{self.target}] E2E publish->receive ms: p50={self.p50_ms:g} p95={self.p95_ms:g} "
            f"p99={self.p99_ms:g} (n={self.e2e_count})",
            f"[{self.target}] errors={self.errors} gaps={self.gaps} lost={self.lost} "
            f"(missed deliveries, all subscribers: {self.missed_deliveries})",
            f"[{self.target}] CPU over Locust's whole run ({self.wall_s:.0f} s): server "
            f"{self.server_cpu_s / self.wall_s:.2f} cores "
            f"({self.server_cpu_s / max(self.acked, 1) * 1e6:,.0f} us per acked write), "
            f"locust {self.locust_cpu_s / self.wall_s:.2f} cores"
            if self.wall_s
            else f"[{self.target}] server CPU not measured (a hub given by --url)",
            *([self.window.line(self.target, self.throughput)] if self.window else []),
        ]

    def last_line(self) -> str:
        return (
            f"throughput_msgs_per_s={self.throughput:.0f} p99_ms={self.p99_ms:g} lost={self.lost}"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(
    url: str, server: subprocess.Popen[bytes], within_s: float, token: str = ""
) -> None:
    deadline = time.monotonic() + within_s
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    while time.monotonic() < deadline:
        try:
            asked = urllib.request.Request(f"{url}/health", headers=headers)
            with urllib.request.urlopen(asked, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if server.poll() is not None:
            raise RuntimeError(f"the server exited early with {server.returncode}")
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not become healthy in {within_s:.0f} s")


def start_server(
    target: str, port: int, data: Path, hosts: int, log: Path, token: str
) -> subprocess.Popen[bytes]:
    if target == "hub":
        command = [sys.executable, "-m", "transports.cli", "up", "--data-dir", str(data)]
        command += ["--port", str(port), "--hosts", str(hosts)]
    else:
        command = [sys.executable, str(HERE / "baseline_server.py"), "--port", str(port)]
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so Ray's processes go with it
            env={
                **os.environ,
                "CHITTY_NAMESPACE": f"load-{port}",
                ADMIN_TOKEN_ENV: token,
                # Every Locust user shares one admin token: the per-principal abuse limits
                # would measure themselves, not the hub.
                "CHITTY_RATE_PER_S": "1000000",
                "CHITTY_RATE_BURST": "1000000",
                "CHITTY_MAX_WS_PER_PRINCIPAL": "100000",
                # Encrypted at rest as by default, with the key next to the run's data dir
                # rather than in the user's own config dir.
                "CHITTY_CONFIG_DIR": str(data.parent / f"{data.name}-config"),
            },
        )


def stop_server(server: subprocess.Popen[bytes], within_s: float = 60) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(within_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)  # leftovers of Ray, if any
    server.wait(10)


def session_cpu_s(session: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the live processes of a session (the
    server and, for a hub, every Ray process it started: they keep its session id), by role:
    `main` (the server itself: for a hub, the gateway and Ray's driver), each of the hub's
    actor classes (named `...Actor`) by its process title (`ray::HostActor.submit_packed` ->
    `HostActor`, every host summed), and `Ray's own` (raylet, GCS, agents, idle workers, and
    any actor class not named so)."""
    ticks: dict[str, int] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) != session:
                continue
            title = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:
            continue  # it exited meanwhile
        role = process_role(int(proc.name) == session, title)
        ticks[role] = ticks.get(role, 0) + int(fields[11]) + int(fields[12])  # utime, stime
    hz = os.sysconf("SC_CLK_TCK")
    return {role: n / hz for role, n in ticks.items()}


def process_role(is_main: bool, title: str) -> str:
    """What `session_cpu_s` files a process under (`title`: its argv[0], which Ray sets)."""
    if is_main:
        return "main"
    name = title.removeprefix("ray::").split(".", 1)[0]
    return name if title.startswith("ray::") and name.endswith("Actor") else "Ray's own"


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (every core; not idle, not waiting on I/O)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = fields[3], fields[4]
    return (sum(fields[:8]) - idle - iowait) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuWindow:
    """CPU used from a few seconds after Locust starts to `--duration` seconds after it: inside
    the publishing phase (which begins once Locust is up, and ends before the drain), so the
    averages are not diluted by start-up and drain the way whole-run figures are."""

    seconds: float
    server_s: dict[str, float] | None  # by role; None: a hub given by --url, not ours to measure
    machine_s: float

    def line(self, target: str, throughput: float) -> str:
        machine = self.machine_s / self.seconds
        head = (
            f"[{target}] CPU while publishing ({self.seconds:.0f} s): this machine "
            f"{machine:.2f} of {os.cpu_count()} cores busy"
        )
        if self.server_s is None:
            return f"{head} (Locust, and the hub given by --url if it runs here)"
        server = sum(self.server_s.values()) / self.seconds
        parts = ", ".join(
            f"{role} {cpu / self.seconds:.2f}"
            for role, cpu in sorted(self.server_s.items(), key=lambda item: -item[1])
        )
        return (
            f"{head}; server {server:.2f} cores "
            f"({server / max(throughput, 1) * 1e6:,.0f} us per acked write; {parts}), "
            f"everything else (Locust mostly) {machine - server:.2f}"
        )


def cpu_since(first: dict[str, float], last: dict[str, float]) -> dict[str, float]:
    """CPU each role used between two `session_cpu_s` samples; a process that exited
    meanwhile takes its CPU with it, so a role never shows less than none."""
    return {role: max(cpu - first.get(role, 0.0), 0.0) for role, cpu in last.items()}


class CpuSampler(threading.Thread):
    """Samples the server's and the machine's CPU `start_s` and `end_s` after it starts."""

    def __init__(self, session: int | None, start_s: float, end_s: float) -> None:
        super().__init__(daemon=True)
        self.session, self.start_s, self.end_s = session, start_s, end_s
        self.window: CpuWindow | None = None
        self._done = threading.Event()

    def _sample(self) -> tuple[float, dict[str, float] | None, float]:
        server = None if self.session is None else session_cpu_s(self.session)
        return time.monotonic(), server, machine_busy_s()

    def run(self) -> None:
        began = time.monotonic()
        if self._done.wait(self.start_s):
            return
        first = self._sample()
        if self._done.wait(max(began + self.end_s - time.monotonic(), 0)):
            return  # Locust ended early: no full window to report
        last = self._sample()
        server = None if first[1] is None or last[1] is None else cpu_since(first[1], last[1])
        self.window = CpuWindow(last[0] - first[0], server, last[2] - first[2])

    def stop(self) -> CpuWindow | None:
        self._done.set()
        self.join()
        return self.window


def children_cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run_locust(url: str, options: argparse.Namespace, out: Path, tag: str) -> Path:
    users = [
        ("WsPublisher", options.publishers),
        ("WsSubscriber", options.subscribers),
        ("RestWriter", options.rest_writers),
    ]
    chosen = [(name, count) for name, count in users if count > 0]
    total = sum(count for _, count in chosen)
    config = [{"user_class_name": name, "fixed_count": count} for name, count in chosen]
    ledger = out / f"{tag}_ledger.json"
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "-u", str(total), "-r", str(options.spawn_rate or total),
        "-t", f"{options.duration + options.drain:.0f}s", "--stop-timeout", "5",
        "--csv", str(out / tag), "--host", url,
        "--config-users", json.dumps(config),
        "--run-tag", tag.upper() + str(int(time.time())), "--projects", str(options.projects),
        "--batch", str(options.batch), "--batches-per-s", str(options.batches_per_s),
        "--pool", str(options.pool), "--acks", options.acks,
        "--publish-for", str(options.duration), "--ledger", str(ledger),
        *[name for name, _ in chosen],
    ]  # fmt: skip
    limit = options.duration + options.drain + 120
    env = {**os.environ, LOAD_TOKEN_ENV: options.token}  # not on the command line: ps shows it
    with (out / f"{tag}_locust.log").open("wb") as log:
        subprocess.run(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=limit, env=env
        )
    return ledger


def run_locust_sampled(
    url: str, options: argparse.Namespace, out: Path, tag: str, session: int | None
) -> tuple[Path, CpuWindow | None]:
    """`run_locust`, sampling CPU from a few seconds in (users spawned, warm) to `duration`
    seconds after Locust's start; `session`: the server's, None if it is not ours."""
    sampler = CpuSampler(session, min(5.0, options.duration / 3), options.duration)
    sampler.start()
    try:
        ledger = run_locust(url, options, out, tag)
    finally:
        window = sampler.stop()
    return ledger, window


def e2e_percentiles(stats_csv: Path) -> tuple[float, float, float, int, int]:
    """p50, p95, p99 of the E2E row, its count, and the failure count of every request."""
    p50 = p95 = p99 = 0.0
    count = failures = 0
    with stats_csv.open() as rows:
        for row in csv.DictReader(rows):
            if row["Type"] == "E2E":
                p50, p95, p99 = (
                    float(row[k] if row[k] != "N/A" else 0) for k in ("50%", "95%", "99%")
                )
                count = int(row["Request Count"])
            if row["Name"] == "Aggregated":
                failures = int(row["Failure Count"])
    return p50, p95, p99, count, failures


def summarize(
    target: str,
    ledger_path: Path,
    stats_csv: Path,
    cpu: tuple[float, float, float] = (0, 0, 0),
    window: CpuWindow | None = None,
) -> Summary:
    ledger = json.loads(ledger_path.read_text())
    acked = ledger["acked"]
    delivered = lost_total = 0
    lost_keys: set[tuple[str, int]] = set()
    gaps = 0
    for sub in ledger["subscribers"]:
        watched = set(sub["projects"])
        seen = {(entity, seq) for entity, seq in sub["seen"]}
        delivered += len(sub["seen"])
        gaps += len(sub["gaps"])
        due = {
            (entity, seq)
            for entity, seq, sent_ns, project in acked
            if project in watched and sent_ns > sub["subscribed_ns"]
        }
        missing = due - seen
        lost_total += len(missing)
        lost_keys |= missing
    seconds = max(ledger["last_ack_ns"] - ledger["first_ack_ns"], 1) / 1e9
    p50, p95, p99, count, failures = e2e_percentiles(stats_csv)
    return Summary(
        target, len(acked), ledger["rest_acked"], seconds, delivered, p50, p95, p99, count,
        failures + ledger["errors"], len(lost_keys), lost_total, gaps, *cpu, window,
    )  # fmt: skip


def measure(target: str, options: argparse.Namespace, out: Path) -> Summary:
    if target == "hub" and options.url:  # a hub already running, e.g. on a Ray cluster
        ledger, window = run_locust_sampled(options.url.rstrip("/"), options, out, target, None)
        return summarize(target, ledger, out / f"{target}_stats.csv", window=window)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(
        target, port, out / f"{target}_data", options.hosts, out / f"{target}.log", options.token
    )
    try:
        wait_healthy(url, server, 180, options.token)
        before = (sum(session_cpu_s(server.pid).values()), children_cpu_s(), time.monotonic())
        ledger, window = run_locust_sampled(url, options, out, target, server.pid)
        cpu = (
            sum(session_cpu_s(server.pid).values()) - before[0],
            children_cpu_s() - before[1],  # Locust: the only child that ended meanwhile
            time.monotonic() - before[2],
        )
    finally:
        stop_server(server)
    return summarize(target, ledger, out / f"{target}_stats.csv", cpu, window)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30, help="seconds of writes")
    parser.add_argument(
        "--drain", type=float, default=5, help="seconds for subscribers to catch up"
    )
    parser.add_argument("--publishers", type=int, default=4, help="WsPublisher users")
    parser.add_argument("--subscribers", type=int, default=2, help="WsSubscriber users")
    parser.add_argument("--rest-writers", type=int, default=0, help="RestWriter users")
    parser.add_argument(
        "--spawn-rate", type=float, default=0, help="users/s (default: all at once)"
    )
    parser.add_argument("--batch", type=int, default=100, help="frames per WS batch")
    parser.add_argument("--batches-per-s", type=float, default=0, help="per publisher; 0: max")
    parser.add_argument("--pool", type=int, default=64, help="todos per publisher")
    parser.add_argument(
        "--acks",
        choices=["each", "batch"],
        default="batch",
        help="publishers' batches answered by one `acks` frame (batch) or a frame per write",
    )
    parser.add_argument("--projects", type=int, default=4)
    parser.add_argument("--hosts", type=int, default=1, help="EntityHost actors of the hub")
    parser.add_argument("--target", choices=["both", "hub", "baseline"], default="both")
    parser.add_argument("--url", default="", help="load this running hub instead of starting one")
    parser.add_argument("--out", type=Path, default=None, help="CSV/ledger/log dir (default: tmp)")
    parser.add_argument(
        "--token",
        default=os.environ.get(LOAD_TOKEN_ENV, ""),
        help=f"bearer token for --url (default ${LOAD_TOKEN_ENV}); a hub started here gets a "
        f"fresh random one as ${ADMIN_TOKEN_ENV}",
    )
    options = parser.parse_args(argv)
    if not options.url:  # a hub (and baseline) of our own: a fresh admin token each run
        options.token = secrets.token_urlsafe(32)
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    out = options.out or Path(tempfile.mkdtemp(prefix="chitty-load-"))
    out.mkdir(parents=True, exist_ok=True)
    targets = ["baseline", "hub"] if options.target == "both" else [options.target]
    results = {target: measure(target, options, out) for target in targets}
    shown = {k: v for k, v in vars(options).items() if k != "token"}
    print(f"load: {shown} -> {out}")
    for summary in results.values():
        print("\n".join(summary.lines()))
    if len(results) == 2 and results["baseline"].throughput:
        ratio = results["hub"].throughput / results["baseline"].throughput
        print(f"hub/baseline throughput ratio: {ratio:.3f}")
    print(results[targets[-1]].last_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
