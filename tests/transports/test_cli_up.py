"""`chitty up` as a newcomer runs it, in real subprocesses: a busy port stops it before anything
starts (no token spent), the next start prints the admin token once, the console is one tidy
block, client commands find the running hub, a token made for its (non-default) data dir works
at once, and a clean stop leaves no Ray session files behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hub.auth.tokens import TokenStore
from hub.settings import HubSettings
from tests.transports.test_restart import free_port
from transports.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMMAND = (sys.executable, "-m", "transports.cli", "up")
SECRET = re.compile(r"^\s+(chitty_\S+)$", re.MULTILINE)


def environment(tmp_path: Path) -> dict[str, str]:
    """A newcomer's environment: no token, no hub URL, none of Ray's settings (the tests' own
    Ray sets some), CLI state and a config dir (where the encryption key is made) of this
    test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHITTY_", "RAY_"))}
    return {
        **env,
        "CHITTY_STATE_DIR": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "COLUMNS": "100",
    }


def up(data: Path, port: int, env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    """`chitty up --data-dir data --port port`, its console (stdout and stderr) in `out`."""
    with out.open("wb") as console:
        return subprocess.Popen(
            [*COMMAND, "--data-dir", str(data), "--port", str(port), "--hosts", "1"],
            cwd=ROOT,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ray's processes go with it
            env={**env, "CHITTY_NAMESPACE": f"up-{port}"},
        )


def wait_for(out: Path, text: str, hub: subprocess.Popen[bytes], within_s: float = 120) -> str:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        shown = out.read_text(errors="replace")
        if text in shown:
            return shown
        assert hub.poll() is None, f"chitty up exited early:\n{shown}"
        time.sleep(0.3)
    raise AssertionError(f"{text!r} not shown in {within_s} s:\n{out.read_text()}")


def ask(url: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def stop(hub: subprocess.Popen[bytes]) -> int:
    """Ctrl-C, as a user stops it; SIGKILL of what is left if it hangs."""
    try:
        hub.send_signal(signal.SIGINT)
        return hub.wait(120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(hub.pid, signal.SIGKILL)


def ray_links() -> set[Path]:
    """The short links in the temp dir through which a hub's Ray reaches its data dir."""
    return {link for link in Path("/tmp").glob("chitty-*/ray") if link.is_symlink()}


@pytest.mark.slow
def test_a_busy_port_spends_no_token_then_a_start_prints_one_and_stops_clean(
    tmp_path: Path,
) -> None:
    data = tmp_path / "hub data"  # a non-default data dir, long enough to need a short link
    env = environment(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        failed = subprocess.run(
            [*COMMAND, "--data-dir", str(data), "--port", str(taken)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    said = failed.stdout + failed.stderr
    assert failed.returncode == 1, said
    assert f"cannot listen on 127.0.0.1:{taken}" in said and "--port" in said
    assert "chitty_" not in said and "Traceback" not in said
    assert not (data / "ray").exists()  # Ray never started
    assert not (data / "auth").exists()  # no token store, so no admin token was spent
    assert not (tmp_path / "config").exists()  # nor an encryption key made

    port = free_port()
    out = tmp_path / "console.txt"
    links_before = ray_links()
    hub = up(data, port, env, out)
    try:
        shown = wait_for(out, "Ctrl-C stops", hub)
        [secret] = SECRET.findall(shown)
        base = f"http://127.0.0.1:{port}"
        status, me = ask(f"{base}/api/v1/auth/me", secret)
        assert status == 200 and me["role"] == "admin", me
        # One tidy block, nothing of Ray's or the MCP transport's on the console.
        assert f"hub running at {base}\n" in shown
        assert f"  data      {data}\n" in shown
        for noise in ("Token authentication", "Terminating session", "StreamableHTTP", "INFO"):
            assert noise not in shown, shown
        logged = (data / "hub.log").read_text()  # where Ray's own messages went instead
        assert "Started a local Ray instance" in logged and "Token authentication" in logged
        # Ray's session lives under the data dir (through a short link: the path is long).
        assert len(list((data / "ray").glob("session_2*"))) == 1
        assert not list(Path("/tmp/ray").glob(f"session_*_{hub.pid}"))
        [link] = ray_links() - links_before
        assert link.resolve() == (data / "ray").resolve()
        assert link.parent.stat().st_mode & 0o777 == 0o700  # this user's own
        assert json.loads((data / "hub.json").read_text())["url"] == base

        # A newcomer's second terminal: client commands find this hub by its record.
        work = CliRunner(env={**env, "CHITTY_TOKEN": secret})
        listed = work.invoke(app, ["todo", "list", "--all"])
        assert listed.exit_code == 0 and "0 todos" in listed.output, listed.output

        # A token made for this hub's data dir works at once, and says so.
        made = work.invoke(
            app, ["token", "create", "me", "--role", "member", "--data-dir", str(data)]
        )
        assert made.exit_code == 0, made.output
        assert f"data dir {data} (--data-dir)" in made.output
        assert f"the hub at {base} uses this data dir" in made.output
        [member] = SECRET.findall(made.output)
        assert ask(f"{base}/api/v1/auth/me", member)[1]["role"] == "member"
        # Made for the default data dir instead, it says that no hub uses it, and which does.
        home = CliRunner(env={**env, "HOME": str(tmp_path / "home")})
        stray = home.invoke(app, ["token", "create", "stray", "--role", "member"])
        assert stray.exit_code == 0, stray.output
        default = tmp_path / "home" / ".local" / "share" / "chittychat"
        assert f"data dir {default} (the default)" in stray.output
        assert f"no hub runs on {default} now" in stray.output
        assert f"the hub at {base} runs on {data}" in stray.output
        [refused] = SECRET.findall(stray.output)
        assert ask(f"{base}/api/v1/auth/me", refused)[0] == 401
    finally:
        code = stop(hub)
    shown = out.read_text()
    assert code == 0 and "stopped" in shown, shown
    assert not (data / "ray").exists()  # a clean stop removes Ray's session files
    assert not ray_links() - links_before
    assert not list(Path("/tmp/ray").glob(f"session_*_{hub.pid}"))
    assert not (data / "hub.json").exists() and not (tmp_path / "state" / "hub.json").exists()

    again = tmp_path / "again.txt"
    hub = up(data, port, env, again)
    try:
        shown = wait_for(again, "Ctrl-C stops", hub)
        assert "admin token" not in shown and not SECRET.findall(shown)  # one exists: none made
    finally:
        stop(hub)


def test_a_lost_admin_token_is_replaced_on_the_data_dir(tmp_path: Path) -> None:
    """What README tells an operator who lost the token `chitty up` printed."""
    data = tmp_path / "data"
    cli = CliRunner(env={"COLUMNS": "200", "XDG_CONFIG_HOME": str(tmp_path)})
    made = cli.invoke(app, ["token", "create", "ops", "--role", "admin", "--data-dir", str(data)])
    assert made.exit_code == 0, made.output
    [secret] = SECRET.findall(made.output)
    assert f"no hub runs on {data} now" in made.output
    codec = HubSettings(data_dir=data, config_dir=tmp_path / "chittychat").value_codec()
    with TokenStore(data / "auth", codec=codec) as tokens:
        assert tokens.authenticate(secret).role == "admin"
        assert tokens.has_admin()  # so `chitty up` on this data dir mints no other
