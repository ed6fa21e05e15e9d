"""Permissions on the target of each action, at run time, end to end (discord.py + emulator).

Every test acts as a Discord user through the local emulator against the
production bot (`env` from test_commands_e2e): what counts is the caller's
right in the channel the action touches, resolved with roles and overwrites,
never the channel the command runs in, and never Discord's command defaults.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot.domain.models import DestinationKind
from tests.bot.test_commands_e2e import Env, env, is_ephemeral, private_text
from tests.discord_emulator import Channel, Overwrite, Permission, User

__all__ = ["env"]  # the fixture, used by name below

HIDDEN = Permission.VIEW_CHANNEL


async def subscribe_channel(env: Env, channel: Channel, category: str) -> int:
    """The admin subscribes `channel` to `category`; returns the subscription id."""
    handle = await env.run(
        env.admin, "subscribe category", {"value": category, "channel": channel.id}
    )
    assert "will get" in (await env.reply(handle)).content
    listing = await env.bot.subscriptions.listing(guild_id=env.guild.id, user_id=env.admin.id)
    return next(
        s.id
        for s in listing.channel
        if s.destination.target_id == channel.id and s.value == category
    )


async def choice_ids(env: Env, user: User, channel: Channel) -> list[int]:
    handle = await env.emu.autocomplete(
        env.guild.id, channel.id, user.id, "unsubscribe", {"subscription": ""},
        focused="subscription",
    )  # fmt: skip
    return [int(c["value"]) for c in await handle.wait_choices()]


async def private_channel(env: Env, name: str) -> Channel:
    """A channel @everyone cannot see; the bot's role can (so it may be subscribed)."""
    return await env.emu.create_text_channel(
        env.guild.id, name,
        overwrites=[
            Overwrite(id=env.guild.id, type=0, deny=HIDDEN),
            Overwrite(id=env.emu.bot_role(env.guild.id).id, type=0, allow=HIDDEN),
        ],
    )  # fmt: skip


async def test_unsubscribe_checks_manage_channels_in_the_subscriptions_channel(env: Env) -> None:
    """Manage Channels in #general only does not remove #papers' subscription, from anywhere."""
    papers_sub = await subscribe_channel(env, env.papers, "cs.CL")
    general_sub = await subscribe_channel(env, env.general, "cs.AI")
    gen_mod = await env.emu.create_member(env.guild.id, "gen-mod")
    await env.emu.set_permission_overwrite(
        env.general.id, gen_mod, allow=Permission.MANAGE_CHANNELS
    )

    assert await choice_ids(env, gen_mod, env.general) == [general_sub]
    refused = await env.run(gen_mod, "unsubscribe", {"subscription": papers_sub})
    assert "Manage Channels" in await private_text(env, refused)
    assert await env.bot.papers.subscriptions.get(papers_sub) is not None

    # The same member, with the right only in #papers (an overwrite), may remove it from #general.
    await env.emu.set_permission_overwrite(env.general.id, gen_mod)
    await env.emu.set_permission_overwrite(env.papers.id, gen_mod, allow=Permission.MANAGE_CHANNELS)
    assert await choice_ids(env, gen_mod, env.general) == [papers_sub]
    removed = await env.run(gen_mod, "unsubscribe", {"subscription": papers_sub})
    assert f"Removed subscription #{papers_sub}" in await private_text(env, removed)
    # A role's Manage Channels taken away in one channel by an overwrite counts too.
    await env.emu.set_permission_overwrite(env.general.id, env.mod, deny=Permission.MANAGE_CHANNELS)
    denied = await env.run(
        env.mod, "unsubscribe", {"subscription": general_sub}, channel=env.papers
    )
    assert "Manage Channels" in await private_text(env, denied)
    assert await env.bot.papers.subscriptions.get(general_sub) is not None


async def test_private_channels_stay_private(env: Env) -> None:
    """/subscriptions, /unsubscribe and its autocomplete hide channels the caller can't see."""
    secret = await private_channel(env, "secret")
    secret_sub = await subscribe_channel(env, secret, "hep-th")
    open_sub = await subscribe_channel(env, env.papers, "cs.CL")

    listing = await env.reply(await env.run(env.member, "subscriptions"))
    assert is_ephemeral(listing)
    assert "cs.CL" in listing.content
    assert "hep-th" not in listing.content and "secret" not in listing.content
    assert f"`#{secret_sub}`" not in listing.content
    admin_listing = await env.reply(await env.run(env.admin, "subscriptions"))
    assert "#secret · category: hep-th" in admin_listing.content

    # Manage Channels by role, but the channel is hidden from them: not offered, not found.
    assert await choice_ids(env, env.mod, env.general) == [open_sub]
    probe = await env.run(env.mod, "unsubscribe", {"subscription": secret_sub})
    missing = await env.run(env.mod, "unsubscribe", {"subscription": 987654})
    assert (await private_text(env, probe)).replace(str(secret_sub), "N") == (
        await private_text(env, missing)
    ).replace("987654", "N")
    assert await env.bot.papers.subscriptions.get(secret_sub) is not None

    # Let the moderator see it (a member overwrite): now it is theirs to manage.
    await env.emu.set_permission_overwrite(secret.id, env.mod, allow=HIDDEN)
    assert secret_sub in await choice_ids(env, env.mod, env.general)
    shown = await env.reply(await env.run(env.mod, "subscriptions"))
    assert "#secret · category: hep-th" in shown.content


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("paperbell status", {}),
        ("paperbell poll", {}),
        ("paperbell resume", {"channel": "papers"}),
        ("paperbell digest", {"channel": "papers", "enabled": True}),
    ],
)
async def test_paperbell_commands_check_manage_server_at_run_time(
    env: Env, command: str, options: dict[str, object]
) -> None:
    """Opened to everyone by an admin, /paperbell still refuses callers without Manage Server."""
    await subscribe_channel(env, env.papers, "cs.LG")
    resolved = {k: env.papers.id if v == "papers" else v for k, v in options.items()}
    for user in (env.member, env.mod):
        handle = await env.run(user, command, resolved, client_checks=False)
        assert "Manage Server" in await private_text(env, handle), user.username
    assert env.arxiv.requests == []
    listing = await env.bot.subscriptions.listing(guild_id=env.guild.id, user_id=0)
    assert not listing.channel[0].destination.digest


async def test_status_in_a_server_counts_only_that_server(env: Env) -> None:
    """Server status counts that server's subscriptions; feed errors appear without credentials."""
    await subscribe_channel(env, env.papers, "cs.LG")
    for category in ("math.PR", "math.CO", "hep-th"):
        options = {"value": category, "channel": env.other_channel.id}
        theirs = await env.run(env.outsider, "subscribe category", options, guild=env.other_guild)
        await env.reply(theirs)
    url = "http://reader:hunter2@proxy.example:3128/rss/cs?token=s3cr3t"
    await env.bot.papers.feeds.record_failure(
        url, f"GET {url} failed: ClientProxyConnectionError", at=datetime.now(UTC)
    )
    text = (await env.reply(await env.run(env.admin, "paperbell status"))).content
    assert "This server: 1 subscription" in text
    assert "hunter2" not in text and "s3cr3t" not in text and "reader" not in text
    assert "proxy.example" in text and "ClientProxyConnectionError" in text


async def test_status_by_dm_shows_only_the_callers_own(env: Env) -> None:
    """By DM, anyone may ask, and sees their own DM subscriptions and alerts: no global counts."""
    await subscribe_channel(env, env.papers, "cs.LG")
    mine = await env.run(env.outsider, "subscribe category", {"value": "hep-th"}, dm=True)
    await env.reply(mine)
    await env.reply(await env.run(env.member, "subscribe keyword", {"value": "bandits"}))
    url = "https://bob:hunter2@mirror.example/rss/cs"
    await env.bot.papers.feeds.record_failure(url, f"GET {url} -> HTTP 503", at=datetime.now(UTC))

    message = await env.reply(await env.run(env.outsider, "paperbell status", dm=True))
    text = message.content
    assert is_ephemeral(message)
    assert "Your DM subscriptions: 1" in text
    assert "Waiting to be sent to you: 0 alerts" in text
    for leak in ("paper", "Feeds", "healthy", "error", "mirror.example", "hunter2", "server"):
        assert leak not in text.replace("paperbell", ""), leak
    dest = await env.bot.papers.subscriptions.destination_for(DestinationKind.DM, env.outsider.id)
    assert dest is not None
    await env.bot.subscriptions.pause(dest.id, "DMs closed (Discord 50007)")
    paused = (await env.reply(await env.run(env.outsider, "paperbell status", dm=True))).content
    assert "Paused" in paused and "DMs closed" in paused


async def test_simultaneous_dm_subscribes_stop_at_the_user_quota(env: Env) -> None:
    """80 simultaneous /subscribe by DM (50 per user) create exactly 50; the rest hear why."""
    names = [f"Person{chr(97 + n // 26)}{chr(97 + n % 26)} Example" for n in range(80)]
    handles = await asyncio.gather(*(
        env.run(env.member, "subscribe author", {"value": name}, dm=True) for name in names
    ))  # fmt: skip
    texts = [(await env.reply(handle)).content for handle in handles]
    assert sum("You'll get a DM" in t for t in texts) == 50
    assert sum("the limit is 50" in t for t in texts) == 30
    assert await env.bot.papers.subscriptions.count_for_user(env.member.id) == 50


async def test_resume_and_digest_also_need_manage_channels_in_the_target(env: Env) -> None:
    """Manage Server is not enough to change a channel's alerts: Manage Channels there is too."""
    await subscribe_channel(env, env.papers, "cs.LG")
    manager = await env.emu.create_member(
        env.guild.id, "manager", permissions=Permission.MANAGE_GUILD
    )
    digest = await env.run(manager, "paperbell digest", {"channel": env.papers.id, "enabled": True})
    assert "Manage Channels permission in" in await private_text(env, digest)
    resume = await env.run(manager, "paperbell resume", {"channel": env.papers.id})
    assert "to resume its alerts" in await private_text(env, resume)
    await env.emu.set_permission_overwrite(env.papers.id, manager, allow=Permission.MANAGE_CHANNELS)
    done = await env.run(manager, "paperbell digest", {"channel": env.papers.id, "enabled": True})
    assert "compact list" in await private_text(env, done)
