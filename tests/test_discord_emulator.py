"""Smoke tests: the real discord.py 2.7 client against the local Discord emulator.

A minimal `commands.Bot` defined here (slash commands, a deferral, an
autocomplete, a button, a subcommand) logs in, syncs, receives interactions
over the gateway and answers them over REST; plain channel/DM posts exercise
Discord's limits, nonce deduplication, rate limits and injected failures.
Nothing in discord.py is patched: only its endpoints point at 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.discord_endpoints import configure_endpoints, current_endpoints
from tests.discord_emulator import (
    BucketConfig,
    CallbackType,
    DiscordEmulator,
    EmulatorError,
    Guild,
    MessageFlag,
    Permission,
    User,
    running_client,
    shard_for_guild,
)
from tests.discord_emulator.state import Channel

log = logging.getLogger(__name__)


PAPERS = ["cs.AI", "cs.CL", "cs.LG", "math.CA", "stat.ML", "hep-th"]


class ButtonView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.button(label="Confirm", custom_id="emu:confirm", style=discord.ButtonStyle.green)
    async def confirm(
        self, interaction: discord.Interaction, button: discord.ui.Button[ButtonView]
    ) -> None:
        await interaction.response.edit_message(
            content=f"confirmed by {interaction.user.id}", view=None
        )


@app_commands.command(description="Answers pong.")
@app_commands.describe(secret="Only you see the answer")
async def ping(interaction: discord.Interaction, secret: bool = False) -> None:
    await interaction.response.send_message("pong", ephemeral=secret)


@app_commands.command(description="Thinks first, then answers.")
async def slow(interaction: discord.Interaction, edit: bool = False) -> None:
    await interaction.response.defer(thinking=True, ephemeral=True)
    await asyncio.sleep(0.05)
    if edit:
        await interaction.edit_original_response(content="done (edited)")
    else:
        await interaction.followup.send("done", ephemeral=True)


@app_commands.command(description="Finds a category.")
async def category(interaction: discord.Interaction, name: str) -> None:
    await interaction.response.send_message(f"picked {name}")


@category.autocomplete("name")
async def category_autocomplete(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=c, value=c) for c in PAPERS if c.startswith(current)][:25]


@app_commands.command(description="Shows a button.")
async def confirm(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("please confirm", view=ButtonView())


@app_commands.command(description="Reports permissions in a channel.")
async def perms(interaction: discord.Interaction, channel: discord.TextChannel) -> None:
    assert isinstance(interaction.user, discord.Member)
    own = interaction.permissions
    app = interaction.app_permissions
    await interaction.response.send_message(
        f"{channel.id} manage_channels={own.manage_channels} bot_send={app.send_messages}",
        ephemeral=True,
    )


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    text: discord.ui.TextInput[FeedbackModal] = discord.ui.TextInput(
        label="Your feedback", custom_id="fb:text"
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"thanks: {self.text.value}", ephemeral=True)


@app_commands.command(description="Asks for feedback in a modal.")
async def feedback(interaction: discord.Interaction) -> None:
    await interaction.response.send_modal(FeedbackModal())


papers = app_commands.Group(name="papers", description="Paper subscriptions.")


@papers.command(name="subscribe", description="Subscribe this channel.")
async def papers_subscribe(interaction: discord.Interaction, category: str, limit: int = 5) -> None:
    await interaction.response.send_message(f"subscribed {category} x{limit}")


class EmulatedBot(commands.Bot):
    """The smallest bot that uses every interaction kind the emulator supports."""

    def __init__(self, **options: object) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            guild_ready_timeout=0.05,
            **options,  # type: ignore[arg-type]
        )
        self.guild_events: list[int] = []
        self.joined: list[int] = []

    async def setup_hook(self) -> None:
        for command in (ping, slow, category, confirm, perms, feedback, papers):
            self.tree.add_command(command)
        await self.tree.sync()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py waits 5 s between shard IDENTIFYs; the emulator has no identify limit.
        return None

    async def on_guild_available(self, guild: discord.Guild) -> None:
        self.guild_events.append(guild.id)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        self.joined.append(guild.id)


class ShardedBot(EmulatedBot, commands.AutoShardedBot):
    pass


@pytest.fixture
def emu(emulated_discord: DiscordEmulator) -> DiscordEmulator:
    return emulated_discord


@pytest.fixture
async def world(emu: DiscordEmulator) -> tuple[Guild, Channel, User]:
    guild = await emu.create_guild("Physics Lab")
    channel = await emu.create_text_channel(guild.id, "arxiv-alerts")
    member = await emu.create_member(guild.id, "alice")
    return guild, channel, member


@pytest.fixture
async def bot(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User]
) -> AsyncIterator[EmulatedBot]:
    async with running_client(EmulatedBot(), emu) as client:
        yield client


async def test_login_sync_and_guild_state(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """Login, global command sync and GUILD_CREATE give discord.py a usable guild cache."""
    guild, channel, _ = world
    assert bot.user is not None and bot.user.id == emu.bot_user.id
    assert bot.application_id == emu.application_id
    syncs = emu.command_syncs
    assert [(s.method, s.guild_id) for s in syncs] == [("PUT", None)]
    assert set(syncs[0].names) == {
        "ping",
        "slow",
        "category",
        "confirm",
        "perms",
        "feedback",
        "papers",
    }
    cached = bot.get_guild(guild.id)
    assert cached is not None and cached.me is not None
    text = cached.get_channel(channel.id)
    assert isinstance(text, discord.TextChannel)
    assert text.permissions_for(cached.me).send_messages
    assert not text.permissions_for(cached.me).manage_channels
    assert bot.guild_events == [guild.id]


async def test_wrong_token_is_a_login_failure(emu: DiscordEmulator) -> None:
    """A token the emulator does not know gets 401, which discord.py turns into LoginFailure."""
    client = discord.Client(intents=discord.Intents.default())
    with pytest.raises(discord.LoginFailure):
        await client.login("not-the-token")
    await client.close()


async def test_ping_round_trip_public_and_ephemeral(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """A slash command reaches the bot over the gateway and its reply comes back as a callback."""
    guild, channel, alice = world
    public = await emu.invoke_command(guild.id, channel.id, alice.id, "ping")
    reply = await public.wait_final()
    assert reply.content == "pong" and not reply.ephemeral
    assert emu.channel_messages(channel.id) == [reply]

    secret = await emu.invoke_command(guild.id, channel.id, alice.id, "ping", {"secret": True})
    record = await secret.wait_response()
    assert record.type == CallbackType.CHANNEL_MESSAGE and record.ephemeral
    hidden = await secret.wait_final()
    assert hidden.flags & MessageFlag.EPHEMERAL and hidden.content == "pong"
    assert emu.channel_messages(channel.id) == [reply]  # ephemeral replies are not in the channel


async def test_defer_then_followup_or_edit(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """A deferral 'thinks'; the first follow-up (or an edit) completes it, keeping ephemeral."""
    guild, channel, alice = world
    handle = await emu.invoke_command(guild.id, channel.id, alice.id, "slow")
    record = await handle.wait_response()
    assert record.type == CallbackType.DEFERRED_CHANNEL_MESSAGE
    final = await handle.wait_final()
    assert final.content == "done" and final.ephemeral and not final.loading
    assert handle.followups == [final]

    edited = await emu.invoke_command(guild.id, channel.id, alice.id, "slow", {"edit": True})
    result = await edited.wait_final()
    assert result.content == "done (edited)" and result.ephemeral
    assert edited.followups == []


async def test_autocomplete_returns_choices(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """Typing into an autocomplete option sends type 4 and collects the bot's choices."""
    guild, channel, alice = world
    handle = await emu.autocomplete(
        guild.id, channel.id, alice.id, "category", {"name": "cs."}, focused="name"
    )
    choices = await handle.wait_choices()
    assert [c["value"] for c in choices] == ["cs.AI", "cs.CL", "cs.LG"]

    run = await emu.invoke_command(guild.id, channel.id, alice.id, "category", {"name": "cs.CL"})
    assert (await run.wait_final()).content == "picked cs.CL"


async def test_button_click_updates_the_message(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """A button on the bot's reply dispatches to its View, which edits the message (type 7)."""
    guild, channel, alice = world
    shown = await (await emu.invoke_command(guild.id, channel.id, alice.id, "confirm")).wait_final()
    assert shown.components[0]["components"][0]["custom_id"] == "emu:confirm"

    click = await emu.click_component(shown.id, "emu:confirm", alice.id)
    record = await click.wait_response()
    assert record.type == CallbackType.UPDATE_MESSAGE
    updated = await click.wait_final()
    assert updated.id == shown.id
    assert updated.content == f"confirmed by {alice.id}" and updated.components == []


async def test_subcommand_options_and_client_side_checks(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """Subcommand paths and typed options follow the synced schema; bad input is refused early."""
    guild, channel, alice = world
    handle = await emu.invoke_command(
        guild.id, channel.id, alice.id, "papers subscribe", {"category": "hep-th", "limit": 3}
    )
    assert (await handle.wait_final()).content == "subscribed hep-th x3"
    with pytest.raises(EmulatorError, match="unknown option"):
        await emu.invoke_command(guild.id, channel.id, alice.id, "papers subscribe", {"cat": "x"})
    with pytest.raises(EmulatorError, match="not registered"):
        await emu.invoke_command(guild.id, channel.id, alice.id, "unsynced")


async def test_member_and_bot_permissions_reach_the_bot(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """Interactions carry the member's and the bot's channel permissions and resolved channels."""
    guild, channel, alice = world
    admin = await emu.create_member(guild.id, "root", admin=True)
    for user, expected in ((alice, False), (admin, True)):
        handle = await emu.invoke_command(
            guild.id, channel.id, user.id, "perms", {"channel": channel.id}
        )
        text = (await handle.wait_final()).content
        assert text == f"{channel.id} manage_channels={expected} bot_send=True"

    await emu.set_permission_overwrite(
        channel.id, emu.bot_role(guild.id), deny=Permission.SEND_MESSAGES
    )
    handle = await emu.invoke_command(
        guild.id, channel.id, alice.id, "perms", {"channel": channel.id}
    )
    assert (await handle.wait_final()).content.endswith("bot_send=False")


async def test_channel_post_records_embeds_mentions_and_nonce(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """A REST post is stored with content, embeds, allowed_mentions and nonce, and is awaitable."""
    _, channel, _ = world
    target = bot.get_channel(channel.id)
    assert isinstance(target, discord.TextChannel)
    embed = discord.Embed(title="Attention Is All You Need", description="Transformers.")
    embed.add_field(name="Authors", value="Vaswani et al.")
    sent = await target.send(
        "new paper",
        embed=embed,
        allowed_mentions=discord.AllowedMentions.none(),
        nonce="p-1706.03762",
    )
    stored = (await emu.wait_for_messages(channel.id, 1))[0]
    assert stored.id == sent.id
    assert stored.content == "new paper"
    assert stored.embeds[0]["title"] == "Attention Is All You Need"
    assert stored.embeds[0]["fields"] == [
        {"name": "Authors", "value": "Vaswani et al.", "inline": True}
    ]
    assert stored.allowed_mentions == {"parse": []}
    assert stored.nonce == "p-1706.03762" and stored.enforce_nonce
    assert stored.created_at.tzinfo is not None
    assert sent.embeds[0].title == "Attention Is All You Need"
    assert emu.created_messages == [stored]


async def test_dm_post_and_closed_dms(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """DMs open a channel with POST /users/@me/channels; a user with DMs closed gives 50007."""
    _, _, alice = world
    user = await bot.fetch_user(alice.id)
    await user.send("your digest")
    assert [m.content for m in await emu.wait_for_dm_messages(alice.id, 1)] == ["your digest"]

    emu.set_dms_open(alice.id, False)
    with pytest.raises(discord.Forbidden) as info:
        await user.send("again")
    assert info.value.code == 50007


async def test_limits_are_real_400s(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """Oversized content or embeds come back as Discord's 50035 Invalid Form Body."""
    _, channel, _ = world
    target = bot.get_channel(channel.id)
    assert isinstance(target, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as info:
        await target.send(embed=discord.Embed(title="t", description="x" * 4097))
    assert info.value.status == 400 and info.value.code == 50035
    assert "embeds.0.description" in info.value.text
    with pytest.raises(discord.HTTPException, match="6000"):
        await target.send(embeds=[discord.Embed(description="y" * 4000) for _ in range(2)])
    with pytest.raises(discord.HTTPException, match="2000 or fewer"):
        await target.send("z" * 2001)
    with pytest.raises(discord.HTTPException, match="25 or fewer"):
        await target.send("ok", nonce="n" * 26)
    assert emu.channel_messages(channel.id) == []


async def test_nonce_deduplicates_retries(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """Re-posting with the same nonce returns the first message instead of a second one."""
    _, channel, _ = world
    target = bot.get_channel(channel.id)
    assert isinstance(target, discord.TextChannel)
    first = await target.send("paper 2307.15771", nonce="2307.15771")
    again = await target.send("paper 2307.15771", nonce="2307.15771")
    other = await target.send("paper 2307.15772", nonce="2307.15772")
    assert again.id == first.id and other.id != first.id
    assert len(emu.channel_messages(channel.id)) == 2
    assert emu.stats.nonce_duplicates == 1


async def test_injected_429_is_retried(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """A 429 with Via and retry_after makes discord.py wait and retry; the post then succeeds."""
    _, channel, _ = world
    target = bot.get_channel(channel.id)
    assert isinstance(target, discord.TextChannel)
    emu.fail_next_posts(channel.id, status=429, retry_after=0.1)
    sent = await target.send("after the rate limit")
    assert [m.id for m in emu.channel_messages(channel.id)] == [sent.id]
    assert emu.stats.rate_limited == 1
    assert emu.stats.statuses[429] == 1


async def test_exhausted_bucket_gives_429_with_headers(
    world: tuple[Guild, Channel, User],
) -> None:
    """A bucket shared with another client runs out: 429, then discord.py's retry succeeds."""
    _, _, _ = world
    async with DiscordEmulator(message_rate_limit=BucketConfig(2, 0.4)) as local:
        guild = await local.create_guild("Rate")
        channel = await local.create_text_channel(guild.id, "busy")
        url = f"{local.api_url}/channels/{channel.id}/messages"
        headers = {"Authorization": f"Bot {local.token}"}
        async with aiohttp.ClientSession() as session:
            seen = []
            for i in range(3):
                async with session.post(url, json={"content": f"m{i}"}, headers=headers) as resp:
                    seen.append((resp.status, resp.headers.get("X-RateLimit-Remaining")))
                    assert resp.headers["Content-Type"] == "application/json"
                    body = await resp.json()
            assert seen == [(200, "1"), (200, "0"), (429, "0")]
            assert body["message"] == "You are being rate limited." and body["global"] is False
            assert resp.headers["Via"] and float(resp.headers["X-RateLimit-Reset-After"]) <= 0.4

        previous = current_endpoints()
        configure_endpoints(local.api_url, local.gateway_url)
        try:
            client = discord.Client(intents=discord.Intents.default())
            await client.login(local.token)
            partial = client.get_partial_messageable(channel.id)
            await partial.send("from discord.py")  # bucket still exhausted: 429, sleep, retry
            await client.close()
        finally:
            configure_endpoints(*previous)
        assert [m.content for m in local.channel_messages(channel.id)] == [
            "m0",
            "m1",
            "from discord.py",
        ]
        assert local.stats.rate_limited >= 1


async def test_forbidden_and_not_found(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """Injected 403/404 and a missing permission raise Forbidden/NotFound with Discord's codes."""
    guild, channel, _ = world
    target = bot.get_channel(channel.id)
    assert isinstance(target, discord.TextChannel)
    emu.fail_next_posts(channel.id, status=403)
    with pytest.raises(discord.Forbidden) as forbidden:
        await target.send("nope")
    assert forbidden.value.code == 50013
    emu.fail_next_posts(channel.id, status=404)
    with pytest.raises(discord.NotFound) as missing:
        await target.send("gone")
    assert missing.value.code == 10003
    await target.send("works again")

    await emu.set_permission_overwrite(channel.id, guild.id, deny=Permission.SEND_MESSAGES)
    with pytest.raises(discord.Forbidden) as denied:
        await target.send("muted")
    assert denied.value.code == 50013
    assert [m.content for m in emu.channel_messages(channel.id)] == ["works again"]


async def test_server_errors(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """A 503 raises DiscordServerError; a lost 500 answer is retried, and the nonce dedups it."""
    _, channel, _ = world
    target = bot.get_channel(channel.id)
    assert isinstance(target, discord.TextChannel)
    emu.fail_next_posts(channel.id, status=503)
    with pytest.raises(discord.DiscordServerError):
        await target.send("down")
    emu.fail_next_posts(channel.id, status=500, after_create=True)
    sent = await target.send("eventually", nonce="delivery-42")
    assert emu.stats.statuses[500] == 1 and emu.stats.nonce_duplicates == 1
    assert [m.id for m in emu.channel_messages(channel.id)] == [sent.id]


@pytest.mark.parametrize("explicit", [True, False], ids=["shard_count=2", "gateway/bot"])
async def test_two_shards_each_get_their_own_guilds(emu: DiscordEmulator, explicit: bool) -> None:
    """With two shards (asked for, or recommended by /gateway/bot) each gets only its guilds."""
    emu.recommended_shards = 2
    guild0 = await emu.create_guild("Zero", shard=(0, 2))
    guild1 = await emu.create_guild("One", shard=(1, 2))
    assert (shard_for_guild(guild0.id, 2), shard_for_guild(guild1.id, 2)) == (0, 1)
    channel1 = await emu.create_text_channel(guild1.id, "alerts")
    bob = await emu.create_member(guild1.id, "bob")
    client = ShardedBot(shard_count=2) if explicit else ShardedBot()
    async with running_client(client, emu):
        assert client.shard_count == 2
        assert {g.id for g in client.guilds} == {guild0.id, guild1.id}
        created = {(e.shard_id, int(e.data["id"])) for e in emu.sent_events("GUILD_CREATE")}
        assert created == {(0, guild0.id), (1, guild1.id)}
        handle = await emu.invoke_command(guild1.id, channel1.id, bob.id, "ping")
        assert (await handle.wait_final()).content == "pong"
        assert [e.shard_id for e in emu.sent_events("INTERACTION_CREATE")] == [1]
    assert len(emu.command_syncs) == 1


async def test_resume_after_dropped_connection_and_clean_close(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User]
) -> None:
    """A dropped socket is RESUMEd (no new IDENTIFY); after close a new client IDENTIFYs afresh."""
    guild, channel, alice = world
    async with running_client(EmulatedBot(), emu) as client:
        assert emu.gateway.identify_count == 1
        await emu.drop_connections(4000)
        await emu.wait_for(lambda: emu.gateway.resume_count == 1, what="a RESUME")
        handle = await emu.invoke_command(guild.id, channel.id, alice.id, "ping")
        assert (await handle.wait_final()).content == "pong"
        assert emu.gateway.identify_count == 1
        assert client.is_ready()
    await emu.wait_until_disconnected()
    assert all(s.connection is None for s in emu.gateway.sessions.values())

    # A new process with the same token just IDENTIFYs again.
    async with running_client(EmulatedBot(), emu):
        assert emu.gateway.identify_count == 2
        handle = await emu.invoke_command(guild.id, channel.id, alice.id, "ping")
        assert (await handle.wait_final()).content == "pong"


async def test_dm_command_and_modal(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """A command used in the bot's DMs carries `user`, not `member`; a modal round-trips."""
    guild, channel, alice = world
    dm = await emu.invoke_command(None, None, alice.id, "ping")
    assert "user" in dm.payload and "member" not in dm.payload and dm.payload["context"] == 1
    reply = await dm.wait_final()
    assert reply.content == "pong" and reply.channel_id == emu.dm_channel_id(alice.id)

    asked = await emu.invoke_command(guild.id, channel.id, alice.id, "feedback")
    modal = await asked.wait_modal()
    assert modal["title"] == "Feedback"
    submitted = await emu.submit_modal(asked, {"fb:text": "great bot"})
    answer = await submitted.wait_final()
    assert answer.content == "thanks: great bot" and answer.ephemeral


async def test_guild_join_and_file_upload_while_connected(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User], bot: EmulatedBot
) -> None:
    """Guilds, channels and threads changed after READY reach the bot; uploads are stored."""
    new_guild = await emu.create_guild("Late Guild")
    new_channel = await emu.create_text_channel(new_guild.id, "late")
    await emu.wait_for(lambda: new_guild.id in bot.joined, what="on_guild_join")
    await emu.wait_for(lambda: bot.get_channel(new_channel.id) is not None, what="CHANNEL_CREATE")
    target = bot.get_channel(new_channel.id)
    assert isinstance(target, discord.TextChannel)
    await target.send(
        "with a file", file=discord.File(io.BytesIO(b"%PDF-1.4"), filename="paper.pdf")
    )
    stored = (await emu.wait_for_messages(new_channel.id, 1))[0]
    assert [(a.filename, a.size) for a in stored.attachments] == [("paper.pdf", 8)]

    thread = await emu.create_thread(new_channel.id, "discussion")
    await emu.wait_for(lambda: bot.get_channel(thread.id) is not None, what="THREAD_CREATE")
    cached = bot.get_channel(thread.id)
    assert isinstance(cached, discord.Thread) and cached.parent_id == new_channel.id
    await cached.send("in the thread")
    assert [m.content for m in emu.channel_messages(thread.id)] == ["in the thread"]

    await emu.delete_channel(new_channel.id)
    await emu.wait_for(lambda: bot.get_channel(new_channel.id) is None, what="CHANNEL_DELETE")
    await emu.remove_guild(new_guild.id)
    await emu.wait_for(lambda: bot.get_guild(new_guild.id) is None, what="GUILD_DELETE")


BOT_PROCESS = """
import asyncio, os, sys
import discord
from bot.discord_endpoints import configure_endpoints

configure_endpoints(os.environ["API"], os.environ["GATEWAY"])
client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)

@client.event
async def on_ready():
    print("READY", flush=True)

client.run(os.environ["TOKEN"], log_handler=None)
"""


async def test_emulator_outlives_a_killed_bot_process(emu: DiscordEmulator) -> None:
    """A bot process killed with SIGKILL drops its socket; a new process with the token connects."""
    await emu.create_guild("Survivors")
    env = {
        **os.environ,
        "API": emu.api_url,
        "GATEWAY": emu.gateway_url,
        "TOKEN": emu.token,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    for attempt in (1, 2):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", BOT_PROCESS, env=env, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert line.strip() == b"READY"
            await emu.wait_until_connected()
            assert emu.gateway.identify_count == attempt
        finally:
            proc.kill()
            await proc.wait()
        await emu.wait_until_disconnected()


async def test_runs_as_a_separate_process(tmp_path: Path) -> None:
    """`python -m tests.discord_emulator` seeds a guild, serves discord.py and writes its state."""
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"guilds": [{"name": "Lab", "channels": ["alerts"]}]}))
    state = tmp_path / "state.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.discord_emulator",
        "--seed",
        str(seed),
        "--state-file",
        str(state),
        cwd=Path(__file__).resolve().parents[1],
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith("DISCORD_EMULATOR_READY ")
        info = json.loads(line.split(" ", 1)[1])
        channel_id = int(info["guilds"]["Lab"]["channels"]["alerts"])
        previous = current_endpoints()
        configure_endpoints(info["api_url"], info["gateway_url"])
        try:
            client = discord.Client(intents=discord.Intents.default())
            await client.login(info["token"])
            await client.get_partial_messageable(channel_id).send("over the process boundary")
            await client.close()
        finally:
            configure_endpoints(*previous)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
    written = json.loads(state.read_text())
    assert [m["content"] for m in written["messages"]] == ["over the process boundary"]


async def test_preloaded_commands_work_without_a_sync(
    emu: DiscordEmulator, world: tuple[Guild, Channel, User]
) -> None:
    """Commands registered by an earlier deployment are invocable by a bot that does not sync."""
    guild, channel, alice = world

    class NoSyncBot(EmulatedBot):
        async def setup_hook(self) -> None:
            self.tree.add_command(ping)

    client = NoSyncBot()
    emu.preload_commands([ping.to_dict(client.tree)])
    async with running_client(client, emu):
        handle = await emu.invoke_command(guild.id, channel.id, alice.id, "ping")
        assert (await handle.wait_final()).content == "pong"
    assert emu.command_syncs == []
