"""`paperbell run` at start-up: waiting for Discord, refusing bad setups.

The bot, a real process, starts while nothing listens on its Discord port (a
network not up yet, an outage) or while its Discord host does not resolve, and
must say so and retry instead of exiting; the local Discord emulator then comes
up on that port and the same process connects. Misconfigurations end at once
with one line and exit code 2. The wait itself is also run against a local
server answering 5xx (a brief Discord outage).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from bot.startup import wait_for_discord
from tests.discord_emulator import DiscordEmulator

ROOT = Path(__file__).resolve().parents[2]
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens there


@dataclass
class Run:
    proc: asyncio.subprocess.Process
    stderr: Path

    def lines(self) -> list[str]:
        return self.stderr.read_text("utf-8").splitlines()

    async def wait_line(self, text: str, timeout: float = 20.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(text in line for line in self.lines()):
            assert self.proc.returncode is None, f"exited early: {self.lines()}"
            assert loop.time() < deadline, f"never printed {text!r}: {self.lines()}"
            await asyncio.sleep(0.05)

    async def exit_code(self, timeout: float = 30.0) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment(tmp: Path, api_url: str, gateway_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PAPERBELL_") and k != "DISCORD_TOKEN"
    }
    env.update(
        DISCORD_TOKEN=DiscordEmulator().token,
        PAPERBELL_DISCORD_API_URL=api_url,
        PAPERBELL_DISCORD_GATEWAY_URL=gateway_url,
        PAPERBELL_DATABASE=str(tmp / "paperbell.db"),
        # No subscriptions, so nothing polls; point arXiv nowhere all the same.
        PAPERBELL_ARXIV_RSS_URL=f"{CLOSED}/rss/",
        PAPERBELL_ARXIV_API_URL=f"{CLOSED}/api/query",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


async def start(env: dict[str, str], tmp: Path, name: str, *args: str) -> Run:
    stderr = tmp / f"{name}.err"
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", *args,
            cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    return Run(proc, stderr)


async def test_waits_for_discord_then_connects(tmp_path: Path) -> None:
    """With nothing on Discord's port the bot says `cannot reach 127.0.0.1:PORT (connection
    refused); retrying in 1 s`, retries with growing waits, and connects once Discord is up;
    SIGTERM then stops it cleanly."""
    port = free_port()
    api, gateway = f"http://127.0.0.1:{port}/api/v10", f"ws://127.0.0.1:{port}/"
    run = await start(environment(tmp_path, api, gateway), tmp_path, "waiting")
    try:
        await run.wait_line(f"cannot reach 127.0.0.1:{port} (connection refused); retrying in 1 s")
        await run.wait_line("retrying in 2 s")  # still running, waiting longer each time
        async with DiscordEmulator(port=port) as emu:
            await emu.wait_until_connected(timeout=20)
            run.proc.send_signal(signal.SIGTERM)
            assert await run.exit_code() == 0, run.lines()
    finally:
        if run.proc.returncode is None:
            run.proc.kill()
    output = "\n".join(run.lines())
    assert "Traceback" not in output
    assert not any(line.startswith("paperbell:") for line in run.lines()), output


async def test_dns_failure_is_named_and_sigterm_while_waiting_exits_0(tmp_path: Path) -> None:
    """A Discord host that does not resolve is reported as a DNS failure, retried, and a
    SIGTERM during the wait ends the process with 0 and no traceback."""
    env = environment(
        tmp_path, "http://paperbell-test.invalid/api/v10", "ws://paperbell-test.invalid/"
    )
    run = await start(env, tmp_path, "dns")
    try:
        await run.wait_line(
            "cannot reach paperbell-test.invalid (DNS lookup failed); retrying in 1 s"
        )
        run.proc.send_signal(signal.SIGTERM)
        assert await run.exit_code() == 0, run.lines()
    finally:
        if run.proc.returncode is None:
            run.proc.kill()
    assert "Traceback" not in "\n".join(run.lines())


async def test_misconfigurations_exit_2_with_one_line(tmp_path: Path) -> None:
    """An API URL without its version path, --shard-count on SQLite and a rejected token each
    end with exactly one line on stderr and exit code 2, and nothing is retried."""
    async with DiscordEmulator() as emu:
        cases = {
            "unversioned": (
                environment(tmp_path, emu.base_url, emu.gateway_url),
                (),
                "paperbell: PAPERBELL_DISCORD_API_URL: Discord API URL "
                f"'{emu.base_url}' must end in a version path like /api/v10",
            ),
            "shards-on-sqlite": (
                environment(tmp_path, emu.api_url, emu.gateway_url),
                ("--shard-count", "2", "--shard-ids", "0"),
                "paperbell: --shard-count needs PostgreSQL",
            ),
            "rejected-token": (
                environment(tmp_path, emu.api_url, emu.gateway_url, DISCORD_TOKEN="no.such.token"),
                (),
                "paperbell: Discord rejected DISCORD_TOKEN (401)",
            ),
        }
        for name, (env, args, expected) in cases.items():
            # Routine INFO lines aside, stderr holds exactly the one line.
            run = await start({**env, "PAPERBELL_LOG_LEVEL": "WARNING"}, tmp_path, name, *args)
            assert await run.exit_code() == 2, (name, run.lines())
            lines = run.lines()
            assert len(lines) == 1 and lines[0].startswith(expected), (name, lines)
        assert emu.stats.messages_created == 0


async def test_discord_server_errors_are_retried_until_it_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """While Discord answers 503 (a brief outage) the wait says so and retries; the first
    answer below 500 ends it."""
    answers = [503, 502, 200]
    seen: list[str] = []

    async def gateway(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"url": "ws://127.0.0.1/"}, status=answers.pop(0))

    app = web.Application()
    app.router.add_get("/api/v10/gateway", gateway)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with caplog.at_level(logging.WARNING, logger="bot.startup"):
            reached = await wait_for_discord(
                f"http://127.0.0.1:{port}/api/v10", asyncio.Event(), delays=(0.01, 0.02)
            )
    finally:
        await runner.cleanup()
    assert reached and answers == [] and seen == ["/api/v10/gateway"] * 3
    assert [r.getMessage() for r in caplog.records] == [
        f"cannot reach 127.0.0.1:{port} (HTTP 503); retrying in 0.01 s",
        f"cannot reach 127.0.0.1:{port} (HTTP 502); retrying in 0.02 s",
    ]
