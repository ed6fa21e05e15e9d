"""Run the Discord emulator as its own process.

    python -m tests.discord_emulator --port 8765 --seed seed.json --state-file out.json

Prints one line `DISCORD_EMULATOR_READY {"api_url": ..., "gateway_url": ..., ...}`
(with the ids of everything seeded) once it listens, serves until SIGINT or
SIGTERM, then writes what the bot did (messages, command syncs, stats) to
`--state-file`. A seed file looks like:

    {"guilds": [{"name": "Lab", "shard": [0, 1], "channels": ["alerts"],
                 "members": [{"name": "alice"}, {"name": "root", "admin": true}]}],
     "users": [{"name": "dm-only"}]}

The live state is also served at `GET /_emulator/state`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from .ratelimit import BucketConfig
from .server import DEFAULT_TOKEN, DiscordEmulator

log = logging.getLogger(__name__)


async def seed_world(emu: DiscordEmulator, seed: dict[str, Any]) -> dict[str, Any]:
    """Create the seeded users and guilds; returns their ids by name."""
    ids: dict[str, Any] = {"users": {}, "guilds": {}}
    for spec in seed.get("users", []):
        user = await emu.create_user(spec["name"], dms_open=spec.get("dms_open", True))
        ids["users"][spec["name"]] = str(user.id)
    for spec in seed.get("guilds", []):
        shard = tuple(spec["shard"]) if "shard" in spec else None
        guild = await emu.create_guild(spec["name"], shard=shard)
        entry: dict[str, Any] = {"id": str(guild.id), "channels": {}, "members": {}}
        for name in spec.get("channels", []):
            channel = await emu.create_text_channel(guild.id, name)
            entry["channels"][name] = str(channel.id)
        for member in spec.get("members", []):
            user = await emu.create_member(
                guild.id,
                member["name"],
                admin=member.get("admin", False),
                permissions=member.get("permissions"),
                dms_open=member.get("dms_open", True),
            )
            entry["members"][member["name"]] = str(user.id)
        ids["guilds"][spec["name"]] = entry
    return ids


def snapshot(emu: DiscordEmulator, ids: dict[str, Any]) -> dict[str, Any]:
    return {
        "application_id": str(emu.application_id),
        "seeded": ids,
        "messages": [emu.world.message_payload(m) for m in emu.created_messages],
        "command_syncs": [
            {
                "method": s.method,
                "guild_id": s.guild_id,
                "names": list(s.names),
                "at": s.at.isoformat(),
            }
            for s in emu.command_syncs
        ],
        "global_commands": emu.global_commands(),
        "stats": {
            "requests": emu.stats.requests,
            "rate_limited": emu.stats.rate_limited,
            "injected_failures": emu.stats.injected_failures,
            "nonce_duplicates": emu.stats.nonce_duplicates,
            "messages_created": emu.stats.messages_created,
            "statuses": {str(k): v for k, v in emu.stats.statuses.items()},
        },
    }


async def serve(args: argparse.Namespace) -> None:
    limit = (
        None if args.no_message_rate_limit else BucketConfig(args.messages_per_window, args.window)
    )
    emu = DiscordEmulator(
        token=args.token,
        port=args.port,
        message_rate_limit=limit,
        recommended_shards=args.shards,
    )
    await emu.start()
    seed = json.loads(Path(args.seed).read_text("utf-8")) if args.seed else {}
    ids = await seed_world(emu, seed)
    ready = {"api_url": emu.api_url, "gateway_url": emu.gateway_url, "token": emu.token, **ids}
    print("DISCORD_EMULATOR_READY " + json.dumps(ready), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if args.state_file:
        Path(args.state_file).write_text(json.dumps(snapshot(emu, ids), indent=2), "utf-8")
    await emu.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.discord_emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the only bot token accepted")
    parser.add_argument("--seed", help="JSON file with users and guilds to create")
    parser.add_argument("--state-file", help="where to write messages and stats on exit")
    parser.add_argument("--shards", type=int, default=1, help="shards recommended by /gateway/bot")
    parser.add_argument("--messages-per-window", type=int, default=5)
    parser.add_argument("--window", type=float, default=5.0, help="seconds per message bucket")
    parser.add_argument("--no-message-rate-limit", action="store_true")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
