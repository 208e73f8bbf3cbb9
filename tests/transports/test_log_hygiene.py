"""No secret in a log line, and a malformed request is one warning line, on a real aiohttp
server on a loopback port (the whole `chitty up` is in tests/transports/test_up_defaults.py)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web

from transports.gateway import log_hygiene
from transports.gateway.log_hygiene import RedactingAccessLogger, redact

SECRET = "chitty_0123456789abcdef_S3cr3tS3cr3tS3cr3t"


@pytest.mark.parametrize(
    ("line", "kept", "gone"),
    [
        (f"GET /ws?access_token={SECRET}&platform=web HTTP/1.1", "platform=web", SECRET),
        ("GET /x?api_key=k1&limit=5", "limit=5", "k1"),
        ("GET /x?Access%5FToken=t1", "Access%5FToken=[redacted]", "t1"),
        ("GET /x?sig=s1;password=p1", "sig=[redacted]", "p1"),
        ("Authorization: Bearer abc.def.ghi", "Bearer [redacted]", "abc.def"),
        (f"token {SECRET} in a message", "token [redacted] in", SECRET),
        ("GET /api/v1/todos?sessionId=CHITTY-SESSION-1&keyboard=2", "keyboard=2", "[redacted]"),
        ("slack refused xoxb-1234-5678-AbCdEf (invalid_auth)", "(invalid_auth)", "AbCdEf"),
        ("socket mode with xapp-1-A0-99-ff00", "socket mode with [redacted]", "ff00"),
    ],
)
def test_redact_masks_credentials_and_keeps_the_rest(line: str, kept: str, gone: str) -> None:
    assert kept in redact(line) and gone not in redact(line)


async def _serve_and_visit() -> None:
    async def ok(request: web.Request) -> web.Response:
        logging.getLogger("aiohttp.web").warning("handled %s", request.path_qs)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/ws", ok)
    runner = web.AppRunner(app, access_log_class=RedactingAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/ws?access_token={SECRET}") as response,
        ):
            assert response.status == 200
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /ws?access_token=" + SECRET.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"X-Evil: a\x00b\r\nConnection: close\r\n\r\n"
        )
        assert (await reader.read()).split()[1] == b"400"
        writer.close()
    finally:
        await runner.cleanup()


def test_access_and_server_logs_hold_no_secret_and_one_warning_per_bad_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log_hygiene.install([caplog.handler])
    with caplog.at_level(logging.DEBUG):
        asyncio.run(_serve_and_visit())
    lines = [f"{r.levelname} {r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records]
    text = "\n".join(lines)
    assert SECRET not in text, text
    assert any("access_token=[redacted]" in line for line in lines), text
    access = [r for r in caplog.records if r.name == "aiohttp.access"]
    assert access and all(SECRET not in str(vars(r)) for r in access)  # extras too
    bad = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [(r.levelname, r.exc_info) for r in bad] == [("WARNING", None)], text
    assert "malformed HTTP request" in bad[0].getMessage()
