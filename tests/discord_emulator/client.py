"""Run a real discord.py client against the emulator for the length of a block."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import discord

from .server import DiscordEmulator

log = logging.getLogger(__name__)

C = TypeVar("C", bound=discord.Client)


@asynccontextmanager
async def running_client(
    client: C, emulator: DiscordEmulator, *, token: str | None = None, timeout: float = 10.0
) -> AsyncIterator[C]:
    """Log `client` in, connect it in a task, wait for on_ready; close it cleanly on exit.

    Raises whatever `connect()` raised if it ends before the client is ready.
    """
    await client.login(token or emulator.token)
    connect = asyncio.create_task(client.connect(), name="discord-connect")
    ready = asyncio.create_task(client.wait_until_ready(), name="discord-ready")
    try:
        done, _ = await asyncio.wait(
            {connect, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if connect in done:
            connect.result()  # re-raises the connection error
            raise RuntimeError("client.connect() returned before the client was ready")
        if ready not in done:
            raise TimeoutError(f"discord client not ready after {timeout}s")
        yield client
    finally:
        ready.cancel()
        await client.close()
        if not connect.done():
            await asyncio.wait_for(connect, timeout)
        elif not connect.cancelled() and connect.exception() is not None:
            log.debug("connect task ended with %r", connect.exception())
