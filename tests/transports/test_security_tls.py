"""TLS: `chitty up --tls-cert --tls-key` serves HTTPS with TLS 1.2 at least, and a missing or
mismatched key file is a clear CLI error, not a traceback."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from tests.transports.test_restart import free_port, launch, mcp_post
from transports.admin import server_tls
from transports.cli import app

ADMIN = f"tls-admin-{secrets.token_urlsafe(32)}"


def self_signed(directory: Path, name: str = "hub") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def client(cafile: Path, most: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A verifying client; `most` caps its protocol version (security level 0 so that the
    client itself is able to offer old versions: only the server may refuse them)."""
    context = ssl.create_default_context(cafile=str(cafile))
    if most is not None:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = most
    return context


def handshake(port: int, context: ssl.SSLContext) -> str:
    """The negotiated protocol version, or ssl.SSLError."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return str(tls.version())


# -- the CLI ----------------------------------------------------------------------------------


def test_a_cert_without_its_key_is_a_cli_error(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    result = CliRunner().invoke(app, ["up", "--data-dir", str(tmp_path), "--tls-cert", str(cert)])
    assert result.exit_code == 2, result.output
    assert "--tls-key" in result.output and "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def run_up_with_a_missing_key(tmp_path: Path) -> tuple[Any, Path]:
    cert, _ = self_signed(tmp_path)
    missing = tmp_path / "nowhere.key"
    result = CliRunner().invoke(
        app,
        ["up", "--data-dir", str(tmp_path), "--tls-cert", str(cert), "--tls-key", str(missing)],
    )
    return result, missing


def test_a_missing_key_file_is_a_cli_error_without_a_traceback(tmp_path: Path) -> None:
    result, _ = run_up_with_a_missing_key(tmp_path)
    assert result.exit_code == 2, result.output
    assert "no such file" in result.output and "Traceback" not in result.output, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert not (tmp_path / "hub.lock").exists()  # refused before anything started


def test_a_missing_key_file_is_named_in_the_error(tmp_path: Path) -> None:
    result, missing = run_up_with_a_missing_key(tmp_path)
    assert missing.name in result.output, result.output


def test_a_key_of_another_certificate_is_a_cli_error(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path, "one")
    _, other_key = self_signed(tmp_path, "two")
    result = CliRunner().invoke(
        app,
        ["up", "--data-dir", str(tmp_path), "--tls-cert", str(cert), "--tls-key", str(other_key)],
    )
    assert result.exit_code == 2, result.output
    assert "cannot use" in result.output and "Traceback" not in result.output, result.output


# -- the server context, in process -----------------------------------------------------------


def test_the_server_context_refuses_tls_1_1_and_accepts_1_2(tmp_path: Path) -> None:
    """Against a plain TLS server on loopback: the same client that negotiates TLS 1.1 with
    a permissive server is refused by `server_tls`'s, and 1.2 and 1.3 get through."""
    import threading

    cert, key = self_signed(tmp_path)

    def serve(context: ssl.SSLContext) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        port = int(listener.getsockname()[1])

        def accept() -> None:
            with listener:
                conn, _ = listener.accept()
                with conn:
                    try:
                        with context.wrap_socket(conn, server_side=True):
                            pass
                    except (ssl.SSLError, OSError):
                        pass

        threading.Thread(target=accept, daemon=True).start()
        return port

    permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
    permissive.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    permissive.load_cert_chain(cert, key)
    old = client(cert, ssl.TLSVersion.TLSv1_1)
    try:  # the control: this client does speak TLS 1.1 when a server lets it
        assert handshake(serve(permissive), old) == "TLSv1.1"
    except ssl.SSLError as error:
        pytest.skip(f"this OpenSSL cannot speak TLS 1.1 at all ({error})")
    hub = server_tls(cert, key)
    assert hub.minimum_version >= ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        handshake(serve(hub), old)
    assert handshake(serve(server_tls(cert, key)), client(cert, ssl.TLSVersion.TLSv1_2)) == (
        "TLSv1.2"
    )
    assert handshake(serve(server_tls(cert, key)), client(cert)) == "TLSv1.3"


# -- chitty up, for real ----------------------------------------------------------------------


def https(port: int, path: str, cafile: Path, token: str | None = ADMIN) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30, context=client(cafile)) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
def test_chitty_up_serves_https_with_tls_1_2_at_least(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    options = ("--hosts", "1", "--tls-cert", str(cert), "--tls-key", str(key))
    hub = launch(tmp_path / "data", port, f"tls-{port}", *options, admin=ADMIN)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if https(port, "/health", cert, None)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
                pass
            assert hub.poll() is None, "chitty up exited early"
            assert time.monotonic() < deadline, "the hub did not become healthy in 120 s"
            time.sleep(0.5)
        status, body = https(port, "/api/v1/todos", cert)
        assert status == 200 and "items" in body, body
        status, body = https(port, "/api/v1/todos", cert, token=None)
        assert status == 401, body
        # /mcp calls the hub back over https, trusting the gateway's own certificate.
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "list_conflicts", "arguments": {}},
        }
        answer = mcp_post(f"https://127.0.0.1:{port}/mcp", call, ADMIN, client(cert))
        assert answer["result"]["isError"] is False, answer
        with pytest.raises(ssl.SSLError):
            handshake(port, client(cert, ssl.TLSVersion.TLSv1_1))
        assert handshake(port, client(cert, ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"
        with pytest.raises((ConnectionError, urllib.error.URLError)):  # no plain HTTP
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30)
    finally:
        os.killpg(hub.pid, signal.SIGTERM)
        try:
            hub.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(hub.pid, signal.SIGKILL)
            hub.wait(30)
