"""`chitty up` as a user runs it: secure by default (a key made on the first start and named
once, a private data dir, credentials never in a log line, a malformed request one warning
line), and a data dir it must not serve (a lost database, a wrong key) refused with one line
and exit code 2 before anything starts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from hub.settings import HubSettings
from hub.startup import prepare
from hub.store import generate_key
from tests.hub.test_startup import fill, flip_the_root_pointer
from tests.transports.test_restart import ADMIN, free_port, launch, start

ROOT = Path(__file__).resolve().parents[2]


def up(data: Path, config: Path, *options: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`chitty up` on `data` that is expected to stop by itself (refused), within a minute."""
    command = [sys.executable, "-m", "transports.cli", "up", "--data-dir", str(data)]
    return subprocess.run(
        [*command, "--port", str(free_port()), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CHITTY_CONFIG_DIR": str(config), "COLUMNS": "200", **env},
    )


def refusal(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused start prints (exit code 2, no traceback)."""
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 2, output
    assert "Traceback" not in output and "ActorDiedError" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


def test_a_store_that_lost_its_databases_is_refused_in_one_line(tmp_path: Path) -> None:
    hub = HubSettings(data_dir=tmp_path / "data", config_dir=tmp_path / "config")
    prepare(hub)
    fill(hub, todos=40)
    flip_the_root_pointer(hub.data_dir / "lmdb" / "data.mdb")
    line = refusal(up(hub.data_dir, tmp_path / "config"))
    assert "lost its databases" in line and "chitty audit verify" in line, line


def test_a_wrong_key_is_refused_in_one_line(tmp_path: Path) -> None:
    hub = HubSettings(data_dir=tmp_path / "data", config_dir=tmp_path / "config")
    prepare(hub)
    fill(hub)
    other = tmp_path / "other.key"
    other.write_bytes(generate_key())
    line = refusal(up(hub.data_dir, tmp_path / "config", CHITTY_ENCRYPTION_KEY_FILE=str(other)))
    assert "does not open with the key" in line and str(other) in line, line
    line = refusal(up(hub.data_dir, tmp_path / "config", "--no-encryption"))
    assert "is encrypted: start without --no-encryption" in line, line


async def _visit(port: int) -> int:
    """What a careless client does: a credential in the query string of a WebSocket upgrade
    and of a REST call, and a request whose header holds a NUL; the NUL's status."""
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{base}/ws?access_token={ADMIN}&platform=web") as socket:
            await socket.send_str('{"type": "heartbeat"}')
            assert (await socket.receive(30)).type is aiohttp.WSMsgType.TEXT
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with session.get(
            f"{base}/api/v1/auth/me?api_key=QUERYSECRET42", headers=headers
        ) as r:
            assert r.status == 200
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Evil: a\x00b\r\nConnection: close\r\n\r\n")
    answer = await reader.read()
    writer.close()
    return int(answer.split()[1])


@pytest.mark.slow
def test_the_first_start_is_private_encrypted_and_logs_no_secret(tmp_path: Path) -> None:
    data, config, port = tmp_path / "data", tmp_path / "config", free_port()
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        hub = launch(
            data,
            port,
            f"up-{port}",
            "--hosts",
            "1",
            "--access-log",
            output=out,
            env={"CHITTY_CONFIG_DIR": str(config)},
        )
        try:
            start(data, port, hub)
            assert asyncio.run(_visit(port)) == 400
        finally:
            hub.send_signal(signal.SIGINT)  # a clean stop: snapshots, then exit
            hub.wait(120)
    text = log.read_text(errors="replace")
    key = config / "encryption.key"
    assert text.count(f"created an encryption key at {key}") == 1, text
    assert key.stat().st_mode & 0o777 == 0o600
    for path in [data, *data.rglob("*")]:
        wanted = 0o700 if path.is_dir() else 0o600
        assert path.stat().st_mode & 0o777 == wanted, path
    assert ADMIN not in text and "QUERYSECRET42" not in text, text
    assert "access_token=[redacted]" in text and "api_key=[redacted]" in text, text
    warnings = [line for line in text.splitlines() if "malformed HTTP request" in line]
    assert len(warnings) == 1 and " WARNING " in warnings[0], text
    assert "Traceback" not in text and " ERROR " not in text, text
    # The key is found by itself from now on: the audit reads the data the hub wrote.
    audit = subprocess.run(
        [sys.executable, "-m", "transports.cli", "audit", "verify"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CHITTY_DATA_DIR": str(data), "CHITTY_CONFIG_DIR": str(config)},
    )
    assert audit.returncode == 0 and "every chain verifies" in audit.stdout, audit
