"""Every slash command end to end: the real discord.py client against the local Discord emulator.

The bot is the production `PaperbellBot` with its cogs, on a real SQLite file
holding a real arXiv listing; arXiv is the local `ArxivServer`. Tests act as
Discord users (`invoke_command`, `autocomplete`, `click_component`) and read
what the emulator received: replies, their ephemeral flag, embeds, buttons.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.arxiv.feeds import parse_rss
from bot.config import Settings
from bot.discord_bot import PaperbellBot
from bot.domain.models import DestinationKind
from bot.runner import build_bot
from bot.services import PaperService
from storage.sqlite import open_sqlite
from tests.arxiv_server import ArxivServer
from tests.discord_emulator import (
    CallbackType,
    Channel,
    DiscordEmulator,
    EmulatorError,
    Guild,
    InteractionHandle,
    Message,
    MessageFlag,
    Overwrite,
    Permission,
    User,
)
from tests.discord_fixtures import discord_emulator, emulated_discord, running_client

__all__ = ["discord_emulator", "emulated_discord"]  # fixtures used by name below

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LISTING = FIXTURES / "rss2024_new_all-archives_2024-11-28.xml"
API_TWO_PAPERS = FIXTURES / "api2026_idlist_0808.05394+1707.08567.xml"
STORED_ID = "2411.17700"  # first item of the listing
# Strings that would betray internals if they reached a user.
LEAKS = re.compile(r"Traceback|sqlite|SELECT |\.db\b|/tmp/|Emu1at|aiosqlite|Error\(", re.I)


@dataclass
class Env:
    emu: DiscordEmulator
    bot: PaperbellBot
    arxiv: ArxivServer
    guild: Guild
    other_guild: Guild
    general: Channel
    papers: Channel
    locked: Channel
    other_channel: Channel
    admin: User  # Administrator in `guild`, plain member of `other_guild`
    mod: User  # Manage Channels only
    member: User  # no special permissions
    outsider: User  # owner of `other_guild`

    async def run(
        self,
        user: User,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        guild: Guild | None = None,
        channel: Channel | None = None,
        dm: bool = False,
        client_checks: bool = True,
    ) -> InteractionHandle:
        """`user` runs `/name` in `channel` (default #general of the main guild), or in DMs."""
        if dm:
            return await self.emu.invoke_command(
                None, None, user.id, name, options, client_checks=client_checks
            )
        g = guild or self.guild
        c = channel or (self.general if g is self.guild else self.other_channel)
        return await self.emu.invoke_command(
            g.id, c.id, user.id, name, options, client_checks=client_checks
        )

    async def reply(self, handle: InteractionHandle) -> Message:
        """The message the user finally sees, checked for leaked internals."""
        message = await handle.wait_final()
        check_clean(message)
        return message


def check_clean(message: Message) -> None:
    text = message.content + " ".join(str(e) for e in message.embeds)
    assert not LEAKS.search(text), text


def is_ephemeral(message: Message) -> bool:
    return bool(message.flags & MessageFlag.EPHEMERAL)


async def private_text(env: Env, handle: InteractionHandle) -> str:
    """The text of an ephemeral answer (a reply, or a follow-up after a deleted deferral)."""
    await handle.wait_response()
    if handle.callback is not None and handle.callback.type == CallbackType.CHANNEL_MESSAGE:
        message = await env.reply(handle)
    else:
        (message,) = await handle.wait_followups(1)
        check_clean(message)
    assert is_ephemeral(message), message.content
    return message.content


def buttons(message: Message) -> Iterator[dict[str, Any]]:
    stack = list(message.components)
    while stack:
        component = stack.pop(0)
        if component.get("type") == 2:
            yield component
        stack.extend(component.get("components") or [])


def button_id(message: Message, label: str) -> str:
    for button in buttons(message):
        if label in str(button.get("label")):
            return str(button["custom_id"])
    raise AssertionError(f"no button {label!r} in {[b.get('label') for b in buttons(message)]}")


@pytest.fixture
async def env(
    emulated_discord: DiscordEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Env]:
    emu = emulated_discord
    guild = await emu.create_guild("Readers")
    general = await emu.create_text_channel(guild.id, "general")
    papers = await emu.create_text_channel(guild.id, "papers")
    bot_role = emu.bot_role(guild.id)
    locked = await emu.create_text_channel(
        guild.id,
        "locked",
        overwrites=[Overwrite(id=bot_role.id, type=0, deny=Permission.EMBED_LINKS)],
    )
    admin = await emu.create_member(guild.id, "alice", admin=True)
    mod = await emu.create_member(guild.id, "mo", permissions=Permission.MANAGE_CHANNELS)
    member = await emu.create_member(guild.id, "bob")
    other_guild = await emu.create_guild("Elsewhere")
    other_channel = await emu.create_text_channel(other_guild.id, "feed")
    await emu.add_member(other_guild.id, admin)
    outsider = emu.world.users[other_guild.owner_id]

    db_path = tmp_path / "paperbell.db"
    db = await open_sqlite(db_path)
    await PaperService(db, None).ingest(parse_rss(LISTING.read_bytes()).papers)
    async with ArxivServer() as arxiv, aiohttp.ClientSession() as session:
        arxiv.set_rss(LISTING.read_bytes())
        arxiv.set_api(API_TWO_PAPERS.read_bytes(), id_list=["1707.08567"])
        settings = Settings(
            database=str(db_path),
            arxiv_rss_url=arxiv.rss_url,
            arxiv_api_url=arxiv.api_url,
            arxiv_delay=0.0,
            delivery_interval_seconds=3600.0,  # deliveries happen only when kicked
        )
        bot = build_bot(
            settings, db, session, user_agent="paperbell-tests", guild_ready_timeout=0.1
        )
        try:
            async with running_client(bot, emu):
                yield Env(
                    emu, bot, arxiv, guild, other_guild, general, papers, locked, other_channel,
                    admin, mod, member, outsider,
                )  # fmt: skip
        finally:
            await db.close()


# ---- /paper --------------------------------------------------------------------------------


async def test_paper_from_the_store_is_public(env: Env) -> None:
    """/paper with a stored id (pasted as a URL) answers publicly with the paper's embed."""
    handle = await env.run(env.member, "paper", {"id": f"https://arxiv.org/abs/{STORED_ID}v1"})
    message = await env.reply(handle)
    assert not is_ephemeral(message)
    (embed,) = message.embeds
    assert embed["url"] == f"https://arxiv.org/abs/{STORED_ID}"
    assert "Generative AI" in embed["title"]


async def test_paper_fetched_from_arxiv_after_deferring(env: Env) -> None:
    """An id the store lacks is fetched from arXiv behind a deferral, then stored."""
    handle = await env.run(env.member, "paper", {"id": "arXiv:1707.08567"})
    record = await handle.wait_response()
    assert record.type == CallbackType.DEFERRED_CHANNEL_MESSAGE
    message = await env.reply(handle)
    assert message.embeds[0]["url"] == "https://arxiv.org/abs/1707.08567"
    assert await env.bot.papers.papers.get("1707.08567") is not None


async def test_paper_bad_and_unknown_ids_answer_privately(env: Env) -> None:
    """A malformed id is refused privately at once; an id arXiv doesn't know is said so."""
    bad = await env.run(env.member, "paper", {"id": "not an id"})
    assert "arXiv" in await private_text(env, bad)
    assert bad.callback is not None and bad.callback.type == CallbackType.CHANNEL_MESSAGE
    long = await env.run(env.member, "paper", {"id": "9" * 5000})
    assert len(await private_text(env, long)) < 200
    # After the (public) deferral the answer replaces "thinking…" in place.
    unknown = await env.run(env.member, "paper", {"id": "2501.99999"})
    assert (await env.reply(unknown)).content == "arXiv has no paper 2501.99999."


# ---- /search and /author ---------------------------------------------------------------------


async def test_search_pages_for_its_owner_only(env: Env) -> None:
    """/search shows 5 results a page; the invoker can page, others are told they can't."""
    handle = await env.run(env.member, "search", {"query": "diffusion model"})
    message = await env.reply(handle)
    assert not is_ephemeral(message)
    first = message.embeds[0]["description"]
    assert first.count("https://arxiv.org/abs/") == 5
    assert message.embeds[0]["footer"]["text"] == "Page 1"

    stranger = await env.emu.click_component(message.id, button_id(message, "Next"), env.admin.id)
    assert "Only the person who ran the command" in await private_text(env, stranger)

    click = await env.emu.click_component(message.id, button_id(message, "Next"), env.member.id)
    record = await click.wait_response()
    assert record.type == CallbackType.UPDATE_MESSAGE
    page_two = env.emu.get_message(message.id)
    assert page_two is not None
    assert page_two.embeds[0]["footer"]["text"] == "Page 2"
    assert page_two.embeds[0]["description"] != first


async def test_search_filters_and_bad_input(env: Env) -> None:
    """Category and date filters apply; an unknown category, bad date or huge query is refused."""
    handle = await env.run(
        env.member, "search", {"query": "learning", "category": "CS.lg", "since": "2024-11-01"}
    )
    message = await env.reply(handle)
    assert "in cs.LG" in message.embeds[0]["title"]
    for options, expected in [
        ({"query": "learning", "category": "cs.LGG"}, "Did you mean"),
        ({"query": "learning", "since": "yesterday"}, "YYYY-MM-DD"),
        ({"query": "x" * 5000}, "limit is 300"),
        # Within the user's arXiv cooldown: the store answers, privately, and says why.
        ({"query": "zzyzzyqqq"}, "No paper matches that search. Stored results only"),
    ]:
        bad = await env.run(env.member, "search", options)
        assert expected in await private_text(env, bad)


async def test_author_shows_papers_and_follow_subscribes_by_dm(env: Env) -> None:
    """/author lists the author's papers with co-authors; Follow DM-subscribes whoever clicks."""
    handle = await env.run(env.member, "author", {"name": "Mukhopadhyay, Banibrata"})
    message = await env.reply(handle)
    embed = message.embeds[0]
    assert embed["description"].count("https://arxiv.org/abs/") == 5
    labels = [str(b.get("label")) for b in buttons(message)]
    assert labels == ["Follow"]  # one page: no paging buttons
    click = await env.emu.click_component(message.id, button_id(message, "Follow"), env.admin.id)
    assert "You'll get a DM" in await private_text(env, click)
    listing = await env.bot.subscriptions.listing(guild_id=None, user_id=env.admin.id)
    assert [(s.kind.value, s.destination.kind) for s in listing.dm] == [
        ("author", DestinationKind.DM)
    ]


async def test_author_ambiguous_and_empty(env: Env) -> None:
    """A bare surname shows the matched spellings; an empty name is refused privately."""
    handle = await env.run(env.member, "author", {"name": "Yang"})
    message = await env.reply(handle)
    assert "possibly different people" in message.embeds[0]["description"]
    assert any("Next" in str(b.get("label")) for b in buttons(message))
    empty = await env.run(env.member, "author", {"name": "   "})
    assert "Give a name" in await private_text(env, empty)


async def test_autocompletes(env: Env) -> None:
    """Category and author options autocomplete from the taxonomy and the store."""
    cats = await env.emu.autocomplete(
        env.guild.id, env.general.id, env.member.id, "subscribe category",
        {"value": "cs.l"}, focused="value",
    )  # fmt: skip
    assert [c["value"] for c in await cats.wait_choices()] == ["cs.LG", "cs.LO"]
    names = await env.emu.autocomplete(
        env.guild.id, env.general.id, env.member.id, "author", {"name": "Mukhop"}, focused="name"
    )
    assert "Banibrata Mukhopadhyay" in [c["value"] for c in await names.wait_choices()]


# ---- /subscribe ------------------------------------------------------------------------------


async def test_subscribe_channel_with_backfill_posts_it(env: Env) -> None:
    """A moderator subscribes #papers with backfill; the reply says so and the papers arrive."""
    handle = await env.run(
        env.mod, "subscribe category", {"value": "cs.lg", "channel": env.papers.id, "backfill": 2}
    )
    message = await env.reply(handle)
    assert is_ephemeral(message)
    assert message.content.startswith(f"<#{env.papers.id}> will get new `cs.LG` papers")
    assert "2 recent matching papers are on the way" in message.content
    posted = await env.emu.wait_for_messages(env.papers.id, 1)
    assert sum(len(m.embeds) for m in posted) == 2


async def test_subscribe_needs_permissions(env: Env) -> None:
    """Members without Manage Channels, and channels the bot can't post in, are refused by name."""
    denied = await env.run(
        env.member, "subscribe category", {"value": "cs.AI", "channel": env.papers.id}
    )
    assert "Manage Channels" in await private_text(env, denied)
    locked = await env.run(
        env.admin, "subscribe keyword", {"value": "transformers", "channel": env.locked.id}
    )
    text = await private_text(env, locked)
    assert "I need the Embed Links permission" in text and f"<#{env.locked.id}>" in text
    assert (await env.bot.subscriptions.listing(guild_id=env.guild.id, user_id=0)).channel == []


async def test_subscribe_without_channel_is_a_dm_and_bad_values_are_refused(env: Env) -> None:
    """No channel means DMs (no permission needed); bad values get short private answers."""
    handle = await env.run(env.member, "subscribe author", {"value": "Shane Legg"})
    text = (await env.reply(handle)).content
    assert text.startswith("You'll get a DM for new papers by **Shane Legg**")
    for name, options, expected in [
        ("subscribe keyword", {"value": "ab"}, "at least 3"),
        ("subscribe category", {"value": "quantum stuff"}, "not an arXiv category"),
        ("subscribe author", {"value": "12345"}, "letter"),
        ("subscribe author", {"value": "x" * 300}, "limit is 100"),
        ("subscribe category", {"value": "cs.AI", "backfill": 11}, "between 0 and 10"),
    ]:
        bad = await env.run(env.member, name, options)
        assert expected in await private_text(env, bad), name


async def test_subscribe_in_dms(env: Env) -> None:
    """In a DM with the bot, /subscribe makes a DM subscription."""
    handle = await env.run(env.outsider, "subscribe category", {"value": "hep-th"}, dm=True)
    assert "You'll get a DM for new `hep-th` papers" in (await env.reply(handle)).content
    listing = await env.bot.subscriptions.listing(guild_id=None, user_id=env.outsider.id)
    assert [s.value for s in listing.dm] == ["hep-th"]


# ---- /unsubscribe and /subscriptions ------------------------------------------------------------


async def test_subscriptions_and_unsubscribe_respect_guilds(env: Env) -> None:
    """Listings and removals never reach another server's subscriptions or someone else's DMs."""
    ours = await env.run(
        env.admin, "subscribe category", {"value": "cs.CL", "channel": env.papers.id}
    )
    await env.reply(ours)
    theirs = await env.run(
        env.outsider, "subscribe category", {"value": "math.PR", "channel": env.other_channel.id},
        guild=env.other_guild,
    )  # fmt: skip
    await env.reply(theirs)
    mine = await env.run(env.member, "subscribe keyword", {"value": "bandits"})
    await env.reply(mine)
    listing_a = await env.bot.subscriptions.listing(guild_id=env.guild.id, user_id=env.member.id)
    listing_b = await env.bot.subscriptions.listing(
        guild_id=env.other_guild.id, user_id=env.outsider.id
    )
    ours_id, theirs_id, mine_id = (
        listing_a.channel[0].id,
        listing_b.channel[0].id,
        listing_a.dm[0].id,
    )

    shown = await env.reply(await env.run(env.member, "subscriptions"))
    assert is_ephemeral(shown)
    assert "#papers · category: cs.CL" in shown.content and "keyword: bandits" in shown.content
    assert "math.PR" not in shown.content

    choices = await env.emu.autocomplete(
        env.guild.id, env.general.id, env.member.id, "unsubscribe", {"subscription": ""},
        focused="subscription",
    )  # fmt: skip
    assert [c["value"] for c in await choices.wait_choices()] == [mine_id]

    foreign = await env.run(env.admin, "unsubscribe", {"subscription": theirs_id})
    missing = await env.run(env.admin, "unsubscribe", {"subscription": 987654})
    assert (await private_text(env, foreign)).replace(str(theirs_id), "N") == (
        await private_text(env, missing)
    ).replace("987654", "N")
    not_allowed = await env.run(env.member, "unsubscribe", {"subscription": ours_id})
    assert "Manage Channels" in await private_text(env, not_allowed)
    someone_elses = await env.run(env.admin, "unsubscribe", {"subscription": mine_id})
    assert "no subscription" in await private_text(env, someone_elses)

    removed = await env.run(env.mod, "unsubscribe", {"subscription": ours_id})
    assert f"Removed subscription #{ours_id}" in await private_text(env, removed)
    removed_dm = await env.run(env.member, "unsubscribe", {"subscription": mine_id}, dm=True)
    assert f"Removed subscription #{mine_id}" in await private_text(env, removed_dm)
    assert await env.bot.papers.subscriptions.get(theirs_id) is not None


async def test_deleted_channel_loses_its_subscriptions(env: Env) -> None:
    """When a subscribed channel is deleted its subscriptions go with it."""
    await env.reply(
        await env.run(env.admin, "subscribe category", {"value": "cs.AI", "channel": env.papers.id})
    )
    deleted = asyncio.ensure_future(env.bot.wait_for("guild_channel_delete", timeout=5))
    await env.emu.delete_channel(env.papers.id)
    await deleted
    # The bot's handler runs as its own task after the event; yield until it committed.
    deadline = time.monotonic() + 5
    while (await env.bot.subscriptions.listing(guild_id=env.guild.id, user_id=0)).channel:
        assert time.monotonic() < deadline, "subscriptions of the deleted channel remain"
        await asyncio.sleep(0)


# ---- /paperbell --------------------------------------------------------------------------------


async def test_status_and_poll(env: Env) -> None:
    """Admins see feed health and can poll now; the poll defers and reports what it found."""
    status = await env.reply(await env.run(env.admin, "paperbell status"))
    assert (
        is_ephemeral(status) and "papers" in status.content and "Last poll: never" in status.content
    )
    await env.reply(
        await env.run(env.admin, "subscribe category", {"value": "cs.LG", "channel": env.papers.id})
    )
    poll = await env.run(env.admin, "paperbell poll")
    record = await poll.wait_response()
    assert record.type == CallbackType.DEFERRED_CHANNEL_MESSAGE and record.ephemeral
    text = (await env.reply(poll)).content
    assert text.startswith("Polled 1 feed:")
    after = await env.reply(await env.run(env.admin, "paperbell status"))
    assert "Last poll: never" not in after.content


async def test_poll_is_for_admins(env: Env) -> None:
    """/paperbell is hidden from plain members, and refused even if a server opens it to them."""
    with pytest.raises(EmulatorError, match="permissions"):
        await env.run(env.member, "paperbell poll")
    forced = await env.run(env.member, "paperbell poll", client_checks=False)
    assert "Manage Server" in await private_text(env, forced)
    assert env.arxiv.requests == []


async def test_resume_a_paused_channel(env: Env) -> None:
    """/paperbell resume restarts a paused channel of this server once the bot can post there."""
    await env.reply(
        await env.run(env.admin, "subscribe category", {"value": "cs.AI", "channel": env.papers.id})
    )
    listing = await env.bot.subscriptions.listing(guild_id=env.guild.id, user_id=0)
    destination = listing.channel[0].destination
    await env.bot.subscriptions.pause(destination.id, "missing permission")
    forced = await env.run(
        env.member, "paperbell resume", {"channel": env.papers.id}, client_checks=False
    )
    assert "Manage Server" in await private_text(env, forced)
    cannot_post = await env.run(env.admin, "paperbell resume", {"channel": env.locked.id})
    assert "Embed Links" in await private_text(env, cannot_post)
    resumed = await env.run(env.admin, "paperbell resume", {"channel": env.papers.id})
    assert f"Alerts to <#{env.papers.id}> are running" in await private_text(env, resumed)
    stored = await env.bot.papers.subscriptions.get_destination(destination.id)
    assert stored is not None and not stored.paused
