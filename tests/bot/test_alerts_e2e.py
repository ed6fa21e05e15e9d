"""The alert pipeline end to end: subscribe, poll arXiv, post to Discord, exactly once.

The production `PaperbellBot` (cogs, scheduler, deliverer) runs against the
local Discord emulator through the real discord.py client and against the
local arXiv server, on a real SQLite file. Users subscribe with the real slash
commands; the tests read what Discord received (messages, embeds, the POST
bodies' `allowed_mentions`) and what the outbox recorded.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.arxiv.feeds import parse_rss
from bot.delivery import MAX_IN_FLIGHT
from bot.discord_bot import PaperbellBot
from bot.domain.models import (
    AnnounceType,
    DeliveryStatus,
    DestinationKind,
    Paper,
    SubscriptionKind,
)
from tests.arxiv_server import ArxivServer, Scripted
from tests.bot.e2e_support import (
    DAY_ONE,
    alert_ids,
    eventually,
    footers,
    message_posts,
    paper,
    pointed_at,
    posted,
    rss_listing,
    running_bot,
    wait_delivered,
)
from tests.discord_emulator import (
    BucketConfig,
    Channel,
    DiscordEmulator,
    Guild,
    InteractionHandle,
    Message,
    Permission,
    User,
)


@dataclass
class World:
    """Two servers with a few channels, their admins and two DM readers."""

    emu: DiscordEmulator
    arxiv: ArxivServer
    db_path: Path
    lab: Guild
    ml: Channel
    theory: Channel
    mixed: Channel
    club: Guild
    feed: Channel
    alice: User  # administrator of `lab`
    bob: User  # owner of `club`
    carol: User  # member of `lab`, subscribes herself (DM) from the server
    dave: User  # subscribes from his DMs with the bot

    async def run(
        self,
        user: User,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        guild: Guild | None = None,
        channel: Channel | None = None,
        dm: bool = False,
    ) -> Message:
        """`user` runs `/name` (in `channel` of `guild`, default #ml, or in DMs); the reply."""
        handle: InteractionHandle
        if dm:
            handle = await self.emu.invoke_command(None, None, user.id, name, options)
        else:
            guild = guild or self.lab
            where = channel or (self.ml if guild is self.lab else self.feed)
            handle = await self.emu.invoke_command(guild.id, where.id, user.id, name, options)
        return await handle.wait_final(timeout=10)

    async def subscribe(
        self, user: User, kind: str, value: str, target: Channel | None = None, **kw: Any
    ) -> str:
        """`/subscribe kind value [channel:target]`, run in `target` itself (else #ml or DMs)."""
        options: dict[str, Any] = {"value": value}
        if target is not None:
            options["channel"] = target.id
            kw.setdefault("channel", target)
            kw.setdefault("guild", self.club if target is self.feed else self.lab)
        reply = await self.run(user, f"subscribe {kind}", options, **kw)
        return reply.content


async def build_world(emu: DiscordEmulator, arxiv: ArxivServer, db_path: Path) -> World:
    lab = await emu.create_guild("Lab")
    ml = await emu.create_text_channel(lab.id, "ml")
    theory = await emu.create_text_channel(lab.id, "theory")
    mixed = await emu.create_text_channel(lab.id, "mixed")
    alice = await emu.create_member(lab.id, "alice", admin=True)
    carol = await emu.create_member(lab.id, "carol")
    club = await emu.create_guild("Club")
    feed = await emu.create_text_channel(club.id, "feed")
    bob = emu.world.users[club.owner_id]
    dave = await emu.create_user("dave")
    return World(emu, arxiv, db_path, lab, ml, theory, mixed, club, feed, alice, bob, carol, dave)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with DiscordEmulator() as emu, ArxivServer() as arxiv, pointed_at(emu):
        yield await build_world(emu, arxiv, tmp_path / "paperbell.db")


# ---- the day's listing ------------------------------------------------------------------------

SPARSE = paper(
    "2501.00001", "Sparse attention for long contexts", authors=("Ada Lovelace", "Alan Turing")
)
CROSS = paper(
    "2501.00002",
    "Calibrated uncertainty for regression",
    categories=("stat.ML", "cs.LG"),
    announce=AnnounceType.CROSS,
)
STRINGS = paper(
    "2501.00003",
    "String dualities and black hole entropy",
    authors=("Juan Example",),
    categories=("hep-th",),
)
WALKS = paper(
    "2501.00004",
    "Diffusion limits of random walks on graphs",
    authors=("Grace Hopper",),
    categories=("math.PR",),
)
IMAGES = paper(
    "2501.00005",
    "Diffusion models for image synthesis",
    authors=("Ada Lovelace",),
    categories=("cs.CV",),
)
UNRELATED = paper(
    "2501.00006", "Protein folding in silico", authors=("Rosalind Example",), categories=("q-bio",)
)
REAL_LISTING = (
    Path(__file__).resolve().parents[1] / "fixtures" / "rss2024_new_all-archives_2024-11-28.xml"
)
LISTING = [SPARSE, CROSS, STRINGS, WALKS, IMAGES, UNRELATED]
NEXT_DAY = paper("2501.00007", "Mixture of experts at scale", authors=("Ada Lovelace",))


async def subscribe_everyone(w: World) -> None:
    """Channel subscriptions in two servers and two DM subscriptions, via the slash commands."""
    assert "will get new `cs.LG` papers" in await w.subscribe(w.alice, "category", "cs.lg", w.ml)
    await w.subscribe(w.alice, "category", "hep-th", w.theory)
    await w.subscribe(w.alice, "category", "cs.LG", w.mixed)
    await w.subscribe(w.alice, "keyword", "diffusion", w.mixed)
    await w.subscribe(w.alice, "author", "Ada Lovelace", w.mixed)
    await w.subscribe(w.bob, "category", "cs.LG", w.feed)
    dm_reply = await w.subscribe(w.carol, "author", "Grace Hopper")
    assert dm_reply.startswith("You'll get a DM"), dm_reply
    await w.subscribe(w.dave, "keyword", "string dualities", dm=True)


def expected_posts(w: World) -> dict[int, set[str]]:
    """Which papers each channel (and DM, by user id) must show: decided by hand."""
    return {
        w.ml.id: {SPARSE.id, CROSS.id},
        w.theory.id: {STRINGS.id},
        w.mixed.id: {SPARSE.id, CROSS.id, WALKS.id, IMAGES.id},
        w.feed.id: {SPARSE.id, CROSS.id},
        w.carol.id: {WALKS.id},
        w.dave.id: {STRINGS.id},
    }


def shown(w: World) -> dict[int, Counter[str]]:
    """What each channel / DM of `expected_posts` shows now, paper id -> times posted."""
    channels = [w.ml, w.theory, w.mixed, w.feed]
    result = {c.id: posted(w.emu.channel_messages(c.id)) for c in channels}
    for user in (w.carol, w.dave):
        result[user.id] = posted(w.emu.dm_messages(user.id))
    return result


async def admin_poll(w: World) -> str:
    return (await w.run(w.alice, "paperbell poll")).content


async def test_alerts_reach_every_channel_and_dm_exactly_once(world: World) -> None:
    """Subscribed channels in two servers and DMs get each matching paper once, across re-polls
    and a restart; several matches in one channel make one alert listing them all."""
    w = world
    w.arxiv.set_rss(rss_listing(LISTING))
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await subscribe_everyone(w)
        reply = await admin_poll(w)
        assert re.match(r"Polled \d+ feeds?: 6 new papers, 11 alerts queued\.", reply), reply
        await wait_delivered(bot)

        expected = expected_posts(w)
        assert shown(w) == {where: Counter(ids) for where, ids in expected.items()}
        assert all(len(alert_ids(m)) > 0 for m in w.emu.created_messages)
        mixed = footers(w.emu.channel_messages(w.mixed.id))
        assert mixed[SPARSE.id] == "Matched category: cs.LG; author: Ada Lovelace"
        assert mixed[IMAGES.id] == "Matched keyword: diffusion; author: Ada Lovelace"
        assert mixed[WALKS.id] == "Matched keyword: diffusion"
        assert footers(w.emu.dm_messages(w.carol.id)) == {WALKS.id: "Matched author: Grace Hopper"}
        counts = await bot.papers.outbox.counts()
        assert counts[DeliveryStatus.SENT] == 11 and counts[DeliveryStatus.PENDING] == 0
        messages = w.emu.stats.messages_created

        # The same listing again: 304 Not Modified, then (new ETag, same day) a stale 200.
        again = await admin_poll(w)
        assert re.match(r"Polled \d+ feeds?: 0 new papers, 0 alerts queued\.", again), again
        w.arxiv.set_rss(rss_listing(LISTING), etag='"same-day-rebuilt"')
        stale = await admin_poll(w)
        assert "still served the listing already seen" in stale, stale
        await wait_delivered(bot)
        assert w.emu.stats.messages_created == messages
        syncs = len(w.emu.command_syncs)

    # A new bot process on the same database file reposts nothing ...
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await wait_delivered(bot)
        assert w.emu.stats.messages_created == messages
        assert len(w.emu.command_syncs) == syncs  # commands unchanged: no re-sync
        # ... and still posts the next day's new paper, only that one.
        w.arxiv.set_rss(rss_listing([*LISTING, NEXT_DAY], built=DAY_ONE.replace(day=8)))
        next_day = await admin_poll(w)
        assert re.match(r"Polled \d+ feeds?: 1 new paper, 3 alerts queued\.", next_day), next_day
        await wait_delivered(bot)
    expected = expected_posts(w)
    for channel in (w.ml, w.mixed, w.feed):
        expected[channel.id].add(NEXT_DAY.id)
    assert shown(w) == {where: Counter(ids) for where, ids in expected.items()}
    assert w.emu.stats.nonce_duplicates == 0


async def test_real_listing_alerts_follow_the_subscription_options(world: World) -> None:
    """On arXiv's real 1,504-item listing each channel gets exactly the papers its category
    subscription asks for: cross-lists only when included, replacements only when asked."""
    w = world
    raw = REAL_LISTING.read_bytes()
    w.arxiv.set_rss(raw)
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await w.subscribe(w.alice, "category", "econ.EM", w.ml)
        options = {"value": "math.SG", "channel": w.theory.id, "include_cross": False}
        await w.run(w.alice, "subscribe category", options, channel=w.theory)
        options = {"value": "math.MG", "channel": w.mixed.id, "include_replacements": True}
        await w.run(w.alice, "subscribe category", options, channel=w.mixed)
        await admin_poll(w)
        await wait_delivered(bot)

    papers = parse_rss(raw).papers
    replaced = {AnnounceType.REPLACE, AnnounceType.REPLACE_CROSS}
    fresh = [p for p in papers if p.announce_type not in replaced]
    expected = {
        w.ml.id: {p.id for p in fresh if "econ.EM" in p.categories},
        w.theory.id: {p.id for p in fresh if p.primary_category == "math.SG"},
        w.mixed.id: {p.id for p in papers if "math.MG" in p.categories},
    }
    # The listing has what makes each option matter: a cross-list, a secondary, a replacement.
    assert any(p.primary_category != "econ.EM" for p in fresh if p.id in expected[w.ml.id])
    assert any("math.SG" in p.categories and p.primary_category != "math.SG" for p in fresh)
    assert any(p.announce_type in replaced for p in papers if p.id in expected[w.mixed.id])
    for channel_id, ids in expected.items():
        assert posted(w.emu.channel_messages(channel_id)) == Counter(ids), channel_id


# ---- when Discord says no ------------------------------------------------------------------


def cs_lg_papers(count: int, start: int = 100) -> list[Paper]:
    return [paper(f"2501.{start + i:05d}", f"Result number {start + i}") for i in range(count)]


async def subscribe_channels(bot: PaperbellBot, w: World, *channels: Channel) -> None:
    """Alice subscribes `channels` (of the lab) to cs.LG through the service, not a command."""
    for channel in channels:
        await bot.subscriptions.subscribe(
            actor_id=w.alice.id, guild_id=w.lab.id, channel_id=channel.id,
            kind=SubscriptionKind.CATEGORY, value="cs.LG",
        )  # fmt: skip


async def more_passes(bot: PaperbellBot, count: int = 3) -> None:
    """Wait until the scheduler has run `count` more delivery passes."""
    target = bot.deliverer.passes + count

    async def done() -> bool:
        return bot.deliverer.passes >= target

    await eventually(done, what=f"{count} more delivery passes")


async def test_missing_permission_pauses_keeps_alerts_and_subscribe_resumes(world: World) -> None:
    """A 403 pauses the channel after one try, keeps its alerts, DMs the subscriber once;
    running /subscribe there again (permission fixed) resumes and posts them."""
    w = world
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await w.subscribe(w.alice, "category", "cs.LG", w.theory)
        await subscribe_channels(bot, w, w.ml)
        bot_role = w.emu.bot_role(w.lab.id)
        await w.emu.set_permission_overwrite(w.theory.id, bot_role, deny=Permission.SEND_MESSAGES)
        papers = cs_lg_papers(3)
        await bot.papers.announce(papers)
        bot.deliverer.kick()
        await wait_delivered(bot)
        await more_passes(bot)

        assert message_posts(w.emu, w.theory.id) == [(w.theory.id, 403)]
        assert posted(w.emu.channel_messages(w.ml.id)) == Counter(p.id for p in papers)
        dest = await bot.papers.subscriptions.destination_for(DestinationKind.CHANNEL, w.theory.id)
        assert dest is not None and dest.paused
        assert (await bot.papers.outbox.counts())[DeliveryStatus.PENDING] == 3
        (told,) = w.emu.dm_messages(w.alice.id)
        assert f"can no longer post in <#{w.theory.id}>" in told.content

        await w.emu.set_permission_overwrite(w.theory.id, bot_role)  # permission back
        reply = await w.subscribe(w.alice, "category", "cs.LG", w.theory)
        assert "they resume now" in reply, reply
        await wait_delivered(bot)
        assert posted(w.emu.channel_messages(w.theory.id)) == Counter(p.id for p in papers)
        assert len(w.emu.dm_messages(w.alice.id)) == 1


async def test_unknown_channel_drops_its_subscriptions(world: World) -> None:
    """A 404 (channel gone without the bot seeing the event) removes the channel's
    subscriptions and alerts after one try; other channels are served as usual."""
    w = world
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await subscribe_channels(bot, w, w.ml, w.theory)
        w.emu.fail_next_posts(w.theory.id, status=404, count=100)
        papers = cs_lg_papers(15)  # two messages per channel
        await bot.papers.announce(papers)
        bot.deliverer.kick()
        await wait_delivered(bot)
        await more_passes(bot)

        assert message_posts(w.emu, w.theory.id) == [(w.theory.id, 404)]
        assert posted(w.emu.channel_messages(w.ml.id)) == Counter(p.id for p in papers)
        gone = await bot.papers.subscriptions.destination_for(DestinationKind.CHANNEL, w.theory.id)
        assert gone is None
        listing = await bot.subscriptions.listing(guild_id=w.lab.id, user_id=w.alice.id)
        assert [s.destination.target_id for s in listing.channel] == [w.ml.id]
        counts = await bot.papers.outbox.counts()
        assert counts[DeliveryStatus.PENDING] == 0 and counts[DeliveryStatus.SENT] == 15


async def test_rate_limits_and_server_errors_are_retried_then_delivered(world: World) -> None:
    """429 and 500 are retried by discord.py, 503 by the outbox with growing backoff, and a
    lost answer (created, then 503/500) is resent under the same nonce: each alert once."""
    w = world
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        bot.deliverer.retry_base = timedelta(milliseconds=200)
        await subscribe_channels(bot, w, w.ml, w.theory, w.mixed)
        await bot.subscriptions.subscribe(
            actor_id=w.bob.id, guild_id=w.club.id, channel_id=w.feed.id,
            kind=SubscriptionKind.CATEGORY, value="cs.LG",
        )  # fmt: skip
        w.emu.fail_next_posts(w.ml.id, status=429, retry_after=0.2)
        w.emu.fail_next_posts(w.theory.id, status=500)
        w.emu.fail_next_posts(w.mixed.id, status=503, count=2)
        w.emu.fail_next_posts(w.feed.id, status=503, after_create=True)
        papers = cs_lg_papers(2)
        await bot.papers.announce(papers)
        bot.deliverer.kick()
        await wait_delivered(bot)

        for channel in (w.ml, w.theory, w.mixed, w.feed):
            assert posted(w.emu.channel_messages(channel.id)) == Counter(p.id for p in papers)
        statuses = {c.id: [s for _, s in message_posts(w.emu, c.id)] for c in (w.ml, w.theory)}
        assert statuses == {w.ml.id: [429, 200], w.theory.id: [500, 200]}
        mixed = [r.at for r in w.emu.requests if r.path.endswith(f"/{w.mixed.id}/messages")]
        assert [s for _, s in message_posts(w.emu, w.mixed.id)] == [503, 503, 200]
        assert mixed[1] - mixed[0] >= timedelta(milliseconds=200)
        assert mixed[2] - mixed[1] >= timedelta(milliseconds=400)
        # The lost answer: Discord kept the message; the retry got it back through the nonce.
        assert [s for _, s in message_posts(w.emu, w.feed.id)] == [503, 200]
        assert w.emu.stats.nonce_duplicates == 1
        (kept,) = w.emu.channel_messages(w.feed.id)
        dest = await bot.papers.subscriptions.destination_for(DestinationKind.CHANNEL, w.feed.id)
        assert dest is not None
        sent = await bot.papers.outbox.sent_for_destination(dest.id)
        assert {d.message_id for d in sent} == {kept.id}


async def test_closed_dms_pause_until_the_user_subscribes_again(world: World) -> None:
    """A user whose DMs are closed gets paused (one try, alerts kept); after opening DMs and
    running /subscribe again the kept alerts arrive once."""
    w = world
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await w.subscribe(w.dave, "category", "cs.LG", dm=True)
        w.emu.set_dms_open(w.dave.id, False)
        papers = cs_lg_papers(2)
        await bot.papers.announce(papers)
        bot.deliverer.kick()
        await wait_delivered(bot)
        await more_passes(bot)

        dm_channel = w.emu.dm_channel_id(w.dave.id)
        assert dm_channel is not None
        assert message_posts(w.emu, dm_channel) == [(dm_channel, 403)]
        dest = await bot.papers.subscriptions.destination_for(DestinationKind.DM, w.dave.id)
        assert dest is not None and dest.paused
        assert (await bot.papers.outbox.counts())[DeliveryStatus.PENDING] == 2

        w.emu.set_dms_open(w.dave.id, True)
        reply = await w.subscribe(w.dave, "category", "cs.LG", dm=True)
        assert "they resume now" in reply, reply
        await wait_delivered(bot)
        assert posted(w.emu.dm_messages(w.dave.id)) == Counter(p.id for p in papers)


# ---- untrusted feed text ----------------------------------------------------------------------

ROLE = "<@&123456789012345678>"
USER = "<@123456789012345678>"
HOSTILE = paper(
    "2501.00900",
    "@everyone <@&123> **bold** __under__ `code` [click](https://evil.example)",
    abstract=f"Hello {USER} and {ROLE} and @here; ~~strike~~ *emph* > quote ||spoiler||",
    authors=(f"{USER}", "@everyone"),
)
WORDS = [
    *("amber", "basalt", "cobalt", "dahlia", "ember", "fjord", "garnet", "harbor", "indigo"),
    *("jasper", "kelp", "lantern", "meadow", "nectar", "obsidian", "pepper", "quartz", "raven"),
    *("saffron", "tundra", "umber", "velvet", "willow", "xenon", "yarrow"),
]


def huge_paper(n: int) -> Paper:
    """A paper over every Discord limit (title, abstract, author list, categories, comment),
    within the parser's size caps (bot/arxiv/caps.py), beyond which an item is skipped."""
    return paper(
        f"2501.{800 + n:05d}",
        ("*Very* long title with _markdown_ " * 400)[: 1900 + n],
        abstract=" ".join(WORDS) + " " + ("An abstract sentence that goes on. " * 500),
        authors=[f"Author{i} " + "Verylongname" * 30 for i in range(500)],
        categories=("cs.LG", *(f"math.{c}" for c in ("AG", "AT", "CO", "DS", "GT", "LO", "NT"))),
    )


async def test_feed_text_pings_nobody_and_is_escaped(world: World) -> None:
    """A title `@everyone <@&123>` and mentions/markdown in the abstract are posted with
    allowed_mentions none and escaped text: nobody is pinged, nothing is formatted."""
    w = world
    w.arxiv.set_rss(rss_listing([HOSTILE]))
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await w.subscribe(w.alice, "category", "cs.LG", w.ml)
        await admin_poll(w)
        await wait_delivered(bot)
    (message,) = w.emu.channel_messages(w.ml.id)
    assert message.allowed_mentions == {"parse": []}
    assert message.content == ""
    (embed,) = message.embeds
    # The parts where Discord renders markdown and mention syntax (author and footer are plain).
    rendered = [embed["title"], embed["description"], *(f["value"] for f in embed["fields"])]
    text = json.dumps(rendered, ensure_ascii=False)
    raw_syntax = ("@everyone", "@here", "<@&123>", USER, ROLE)
    for raw in (*raw_syntax, "**bold**", "__under__", "~~strike~~", "||"):
        assert raw not in text, raw
    assert embed["title"].startswith("@\u200beveryone ")
    assert "\\*\\*bold\\*\\* \\_\\_under\\_\\_" in embed["title"]
    assert "123456789012345678" in embed["description"]  # still readable, just inert


async def test_huge_papers_fit_discord_limits(world: World) -> None:
    """Papers with enormous titles, abstracts and author lists, matched by 25 subscriptions at
    once, are cut to Discord's limits: every alert is accepted (no HTTP 400) and posted once."""
    w = world
    papers = [huge_paper(n) for n in range(12)]
    w.arxiv.set_rss(rss_listing(papers))
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await subscribe_channels(bot, w, w.ml)
        for word in WORDS[:25]:
            await bot.subscriptions.subscribe(
                actor_id=w.alice.id, guild_id=w.lab.id, channel_id=w.mixed.id,
                kind=SubscriptionKind.KEYWORD, value=word,
            )  # fmt: skip
        await admin_poll(w)
        await wait_delivered(bot)
        counts = await bot.papers.outbox.counts()
    assert w.emu.stats.validation_errors == 0
    assert counts[DeliveryStatus.SENT] == 24 and counts[DeliveryStatus.FAILED] == 0
    for channel in (w.ml, w.mixed):
        messages = w.emu.channel_messages(channel.id)
        assert posted(messages) == Counter(p.id for p in papers)
        assert len(messages) >= 2  # 12 big embeds cannot share one 6,000-character message
    assert all(
        f.startswith("Matched keyword: amber; keyword: basalt")
        for f in footers(w.emu.channel_messages(w.mixed.id)).values()
    )


# ---- many destinations -------------------------------------------------------------------------


async def test_rate_limited_channels_do_not_hold_up_the_others(tmp_path: Path) -> None:
    """500 alerts to 20 channels (more than the posts allowed in flight): while channels wait
    for their rate-limit bucket every other channel keeps posting, each in queue order,
    and no request is refused with a 429."""
    window = BucketConfig(2, 3.0)  # each channel: 2 messages, then a 3 s wait
    async with (
        DiscordEmulator(message_rate_limit=window) as emu,
        ArxivServer() as arxiv,
        pointed_at(emu),
    ):
        guild = await emu.create_guild("Many")
        channels = [await emu.create_text_channel(guild.id, f"c{i}") for i in range(20)]
        async with running_bot(emu, tmp_path / "paperbell.db", arxiv) as bot:
            for channel in channels:
                await bot.subscriptions.subscribe(
                    actor_id=guild.owner_id, guild_id=guild.id, channel_id=channel.id,
                    kind=SubscriptionKind.CATEGORY, value="cs.LG",
                )  # fmt: skip
            papers = cs_lg_papers(25)
            assert (await bot.papers.announce(papers)).deliveries == 500
            bot.deliverer.kick()
            await wait_delivered(bot, timeout=30)

    in_order = [p.id for p in papers]
    per_channel = [emu.channel_messages(c.id) for c in channels]
    for messages in per_channel:
        assert len(messages) == 3
        assert [pid for m in messages for pid in alert_ids(m)] == in_order
    # Every channel spent its bucket (2 messages) long before the first bucket reset (3 s):
    # no channel waited for a slot held by another channel's rate-limit sleep.
    times = [
        [r.at for r in emu.requests if r.path == f"/channels/{c.id}/messages" and r.status == 200]
        for c in channels
    ]
    spread = max(t[1] for t in times) - min(t[0] for t in times)
    assert spread < timedelta(seconds=2), spread
    assert emu.stats.rate_limited == 0


# ---- shutting down ---------------------------------------------------------------------------


async def test_shutdown_cancels_a_stuck_poll_after_its_grace(world: World) -> None:
    """Closing the bot while arXiv hangs mid-poll waits only the grace period, then cancels
    the poll: nothing half-stored, and the database closes cleanly."""
    w = world
    w.arxiv.set_rss(rss_listing(LISTING))
    w.arxiv.enqueue(Scripted(passthrough=True, delay=60, path="/rss"))
    async with running_bot(w.emu, w.db_path, w.arxiv, arxiv_timeout=120.0) as bot:
        await subscribe_channels(bot, w, w.ml)
        bot.poll_scheduler.shutdown_grace = 0.3
        poll = await w.emu.invoke_command(w.lab.id, w.ml.id, w.alice.id, "paperbell poll")
        await poll.wait_response()
        await w.arxiv.wait_for_requests(1)
        await asyncio.wait_for(bot.close(), timeout=10)
        assert (await bot.papers.stats()).papers == 0
    assert w.emu.stats.messages_created == 0


async def test_global_rate_limit_is_hit_once_then_respected(tmp_path: Path) -> None:
    """2,000 alerts to 40 channels (200 messages) against Discord's global limit of 50
    requests/s: after the first global 429 the bot paces its posts, where an unpaced
    sender would be refused again in each of the four seconds. The limit is spent when
    the pass starts (as by the bot's other requests), so the first posts meet it even on
    a machine too busy to send 50 posts in a second by itself."""
    async with (
        DiscordEmulator(message_rate_limit=None, global_rate_limit=50) as emu,
        ArxivServer() as arxiv,
        pointed_at(emu),
    ):
        guild = await emu.create_guild("Busy")
        channels = [await emu.create_text_channel(guild.id, f"c{i}") for i in range(40)]
        async with running_bot(emu, tmp_path / "paperbell.db", arxiv) as bot:
            for channel in channels:
                await bot.subscriptions.subscribe(
                    actor_id=guild.owner_id, guild_id=guild.id, channel_id=channel.id,
                    kind=SubscriptionKind.CATEGORY, value="cs.LG",
                )  # fmt: skip
            papers = cs_lg_papers(50)
            await bot.papers.announce(papers)
            emu.reset_rate_limits()
            emu.exhaust_global_rate_limit()
            bot.deliverer.kick()
            await wait_delivered(bot, timeout=30)
            assert bot.deliverer.gate.paced

    for channel in channels:
        assert posted(emu.channel_messages(channel.id)) == Counter(p.id for p in papers)
    refused = [r for r in emu.requests if r.status == 429]
    # One burst at discovery; a second only if load delays posts past the margin.
    assert 1 <= len({int((r.at - refused[0].at).total_seconds()) for r in refused}) <= 2
    assert len(refused) <= MAX_IN_FLIGHT


async def test_posts_are_recorded_when_answered_not_after_the_bucket_wait(tmp_path: Path) -> None:
    """A message that spends the channel's bucket is marked sent as soon as Discord answers,
    not after the minute discord.py then sleeps: the pass ends and the bot closes at once."""
    async with (
        DiscordEmulator(message_rate_limit=BucketConfig(5, 60.0)) as emu,
        ArxivServer() as arxiv,
        pointed_at(emu),
    ):
        guild = await emu.create_guild("Slow")
        channel = await emu.create_text_channel(guild.id, "papers")
        # No scheduled passes: the one timed below is the only one.
        db_path = tmp_path / "paperbell.db"
        async with running_bot(emu, db_path, arxiv, delivery_interval_seconds=3600) as bot:
            await bot.subscriptions.subscribe(
                actor_id=guild.owner_id, guild_id=guild.id, channel_id=channel.id,
                kind=SubscriptionKind.CATEGORY, value="cs.LG",
            )  # fmt: skip
            await bot.papers.announce(cs_lg_papers(50))  # 5 messages: the bucket's last one
            report = await asyncio.wait_for(bot.deliverer.run_once(), timeout=20)
            assert report.sent == 50 and report.messages == 5
            await asyncio.wait_for(bot.close(), timeout=20)
    assert len(emu.channel_messages(channel.id)) == 5
