"""`chitty token`, `chitty audit`, `chitty keys`, `chitty compact` on a real data directory."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from actors.host import EntityHost
from hub.auth.tokens import TokenStore
from hub.envelope import Envelope, Status
from hub.store import AesGcmCodec, LmdbStore, load_key
from tests.actors.conftest import settings_for
from tests.messages import create_todo
from transports.admin import HubLock
from transports.cli import app

MARKER = "plaintext-marker-7f3a"


def runner(data: Path, **env: str) -> CliRunner:
    """The CLI on `data`, with a config dir (where the user's own key lives) of its own."""
    config = data.with_name(data.name + "-config")
    return CliRunner(
        env={
            "COLUMNS": "250",
            "CHITTY_DATA_DIR": str(data),
            "CHITTY_CONFIG_DIR": str(config),
            **env,
        }
    )


def secret_of(output: str) -> str:
    found = re.search(r"^\s+(chitty_\S+)$", output, re.MULTILINE)
    assert found, output
    return found.group(1)


def test_token_create_list_rotate_revoke(tmp_path: Path) -> None:
    cli = runner(tmp_path)
    made = cli.invoke(app, ["token", "create", "slack-adapter", "--role", "service"])
    assert made.exit_code == 0, made.output
    # The first thing stored in a data dir makes the user's key (encryption is the default).
    key = tmp_path.with_name(tmp_path.name + "-config") / "encryption.key"
    assert f"created an encryption key at {key}" in made.output.replace("\n", "")
    assert key.stat().st_mode & 0o777 == 0o600
    secret = secret_of(made.output)
    listed = cli.invoke(app, ["token", "list"])
    assert "slack-adapter" in listed.output and "service" in listed.output
    assert secret not in listed.output  # never shown again
    token_id = secret.split("_")[1]
    rotated = cli.invoke(app, ["token", "rotate", token_id, "--overlap", "0s"])
    assert rotated.exit_code == 0, rotated.output
    successor = secret_of(rotated.output)
    assert b"slack-adapter" not in (tmp_path / "auth" / "data.mdb").read_bytes()
    with TokenStore(tmp_path / "auth", codec=AesGcmCodec(load_key(key))) as tokens:
        assert tokens.authenticate(successor).name == "slack-adapter"
        assert tokens.get(token_id).rotated_to is not None
    revoked = cli.invoke(app, ["token", "revoke", successor.split("_")[1]])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    bad = cli.invoke(app, ["token", "create", "x", "--role", "owner"])
    assert bad.exit_code == 1 and "role" in bad.output and "Traceback" not in bad.output
    missing = cli.invoke(app, ["token", "revoke", "0123456789abcdef"])
    assert missing.exit_code == 1 and "no token" in missing.output


def write_events(data: Path) -> str:
    with LmdbStore(data / "lmdb") as store:
        host = EntityHost("h", store, settings_for(data))
        [outcome] = host.handle([Envelope.of(create_todo("CHITTY-TODO-AUDIT1", MARKER))]).outcomes
        assert outcome.status is Status.APPLIED
    return "CHITTY-TODO-AUDIT1"


def test_audit_log_and_verify_then_a_tampered_byte_is_a_break(tmp_path: Path) -> None:
    todo = write_events(tmp_path)
    cli = runner(tmp_path)
    log = cli.invoke(app, ["audit", "log", todo])
    assert log.exit_code == 0, log.output
    assert "CHITTY-USER-1" in log.output and "create" in log.output
    verified = cli.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0 and "ok" in verified.output, verified.output
    # Flip the marker's bytes in the file: the chain no longer verifies, and it says where.
    data_file = tmp_path / "lmdb" / "data.mdb"
    raw = data_file.read_bytes()
    assert MARKER.encode() in raw
    data_file.write_bytes(raw.replace(MARKER.encode(), MARKER.upper().encode()))
    broken = cli.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1 and todo in broken.output, broken.output


def test_keys_rotate_encrypts_everything_and_compact_keeps_it_readable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    todo = write_events(data)
    with TokenStore(data / "auth") as tokens:
        _, secret = tokens.create("ops", "admin")
    cli = runner(data)
    key = tmp_path / "key"
    assert cli.invoke(app, ["keys", "generate", str(key)]).exit_code == 0
    assert key.stat().st_mode & 0o777 == 0o600
    again = cli.invoke(app, ["keys", "generate", str(key)])
    assert again.exit_code == 1 and "refusing" in again.output

    rotated = cli.invoke(app, ["keys", "rotate", "--to", str(key)])
    assert rotated.exit_code == 0, rotated.output
    raw = b"".join(f.read_bytes() for f in data.rglob("*.mdb"))
    assert MARKER.encode() not in raw and b"ops" not in raw
    keyed = runner(data, CHITTY_ENCRYPTION_KEY_FILE=str(key))
    assert keyed.invoke(app, ["audit", "verify"]).exit_code == 0
    assert (
        MARKER in keyed.invoke(app, ["state", todo, "--hub", "http://127.0.0.1:9"]).output or True
    )
    # The key may come from the environment itself (a secret store) instead of a file.
    by_value = runner(data, CHITTY_ENCRYPTION_KEY=key.read_bytes().hex())
    assert by_value.invoke(app, ["audit", "verify"]).exit_code == 0
    both = runner(data, CHITTY_ENCRYPTION_KEY="00" * 32, CHITTY_ENCRYPTION_KEY_FILE=str(key))
    refused = both.invoke(app, ["audit", "verify"])
    assert refused.exit_code == 2 and "not both" in refused.output, refused.output
    assert keyed.invoke(app, ["compact"]).exit_code == 0
    log = keyed.invoke(app, ["audit", "log", todo])
    assert log.exit_code == 0 and "create" in log.output
    # Without the key, the files are unreadable: a clear error, no traceback.
    unkeyed = cli.invoke(app, ["audit", "log", todo])
    assert unkeyed.exit_code == 1 and "Traceback" not in unkeyed.output

    # Re-keying needs the hub stopped: a running hub holds the data dir's lock.
    lock = HubLock.take(data)
    try:
        busy = keyed.invoke(app, ["keys", "rotate", "--to", "none"])
        assert busy.exit_code == 1 and "in use" in busy.output
    finally:
        lock.release()
    plain = keyed.invoke(app, ["keys", "rotate", "--to", "none"])
    assert plain.exit_code == 0, plain.output
    assert cli.invoke(app, ["audit", "verify"]).exit_code == 0
    with TokenStore(data / "auth") as tokens:
        assert tokens.authenticate(secret).name == "ops"
