"""Alerts follow arXiv's announcements, never look-ups: end to end through discord.py.

The production bot runs against the Discord emulator and the local arXiv
server on a real SQLite file. Look-ups (`/paper`) fill the catalogue and post
nothing; listings announce, and each announcement alerts each destination
once: first announcements, late cross-lists, new versions (`include_replacements`
and followers only), withdrawals and publications.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.arxiv.feeds import parse_rss
from bot.discord_bot import PaperbellBot
from bot.domain.models import (
    AnnounceType,
    DeliveryStatus,
    DestinationKind,
    Paper,
    SubscriptionKind,
)
from storage.feeds import FeedStateRepository
from storage.sqlite import open_sqlite
from storage.subscriptions import SubscriptionRepository
from tests.arxiv_server import ArxivServer
from tests.bot.e2e_support import (
    DAY_ONE,
    api_feed,
    message_posts,
    paper,
    pointed_at,
    posted,
    rss_listing,
    running_bot,
    wait_delivered,
)
from tests.bot.test_alerts_e2e import World, admin_poll, build_world
from tests.discord_emulator import DiscordEmulator, Message

DAY_TWO = DAY_ONE.replace(day=8)
DAY_THREE = DAY_ONE.replace(day=9)

OLD = paper(
    "2102.01685",
    "An old result by a followed author",
    authors=("Ada Lovelace",),
    categories=("cs.LG",),
)
FRESH = paper("2501.00011", "Sparse mixtures of experts", authors=("Nora Example",))
OTHER = paper("2501.00012", "Graph rewiring for message passing", authors=("Nora Example",))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with DiscordEmulator() as emu, ArxivServer() as arxiv, pointed_at(emu):
        yield await build_world(emu, arxiv, tmp_path / "paperbell.db")


def notes(messages: Iterable[Message]) -> dict[str, list[str]]:
    """Paper id -> the descriptions of every alert embed posted for it, in order."""
    found: dict[str, list[str]] = {}
    for message in messages:
        for embed in message.embeds:
            url = str(embed.get("url", ""))
            found.setdefault(url.rsplit("/abs/", 1)[-1], []).append(str(embed["description"]))
    return found


async def look_up(w: World, paper_id: str) -> Message:
    """A member runs `/paper paper_id` in #theory (no alert channel here); the public answer."""
    return await w.run(w.carol, "paper", {"id": paper_id}, channel=w.theory)


async def nothing_pending(bot: PaperbellBot) -> None:
    counts = await bot.papers.outbox.counts()
    assert counts[DeliveryStatus.PENDING] == 0, counts


async def test_lookup_of_an_old_paper_by_a_followed_author_posts_nothing(world: World) -> None:
    """`/paper` of a paper the store did not know, by a followed author, alerts nobody."""
    w = world
    w.arxiv.set_api(api_feed([OLD]), id_list=[OLD.id])
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await w.subscribe(w.alice, "author", "Ada Lovelace", w.mixed)
        await w.subscribe(w.dave, "author", "Ada Lovelace", dm=True)
        answer = await look_up(w, OLD.id)
        assert answer.embeds and OLD.id in str(answer.embeds[0]["url"])
        assert await bot.papers.papers.get(OLD.id) is not None  # it is in the catalogue
        await wait_delivered(bot)
        await bot.deliverer.deliver()
    assert message_posts(w.emu, w.mixed.id) == []
    assert w.emu.dm_messages(w.dave.id) == []


async def test_lookup_then_the_announcing_listing_alerts_exactly_once(world: World) -> None:
    """A paper looked up before its listing is still alerted once when the listing announces
    it; a second poll and a restart post nothing more."""
    w = world
    w.arxiv.set_api(api_feed([FRESH]), id_list=[FRESH.id])
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await w.subscribe(w.alice, "category", "cs.LG", w.ml)
        await look_up(w, FRESH.id)
        await wait_delivered(bot)
        assert posted(w.emu.channel_messages(w.ml.id)) == Counter()

        w.arxiv.set_rss(rss_listing([FRESH, OTHER]))
        await admin_poll(w)
        await wait_delivered(bot)
        assert posted(w.emu.channel_messages(w.ml.id)) == Counter({FRESH.id: 1, OTHER.id: 1})
        w.arxiv.set_rss(rss_listing([FRESH, OTHER]), etag='"rebuilt"')
        await admin_poll(w)
        await wait_delivered(bot)
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await admin_poll(w)
        await wait_delivered(bot)
        await nothing_pending(bot)
    assert posted(w.emu.channel_messages(w.ml.id)) == Counter({FRESH.id: 1, OTHER.id: 1})


async def test_replacements_reach_include_replacements_and_followers_once(world: World) -> None:
    """v2 goes to the include_replacements channel and to the paper's followers (by
    /subscribe paper and by the Follow button) once, saying v2; a withdrawal says so."""
    w = world
    w.arxiv.set_api(api_feed([FRESH]), id_list=[FRESH.id])
    w.arxiv.set_rss(rss_listing([FRESH]))
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await w.subscribe(w.alice, "category", "cs.LG", w.ml)
        options = {"value": "cs.LG", "channel": w.mixed.id, "include_replacements": True}
        await w.run(w.alice, "subscribe category", options, channel=w.mixed)
        reply = await w.subscribe(w.dave, "paper", f"https://arxiv.org/abs/{FRESH.id}v1", dm=True)
        assert "You'll get a DM" in reply and FRESH.id in reply, reply
        answer = await look_up(w, FRESH.id)
        (button,) = [
            c
            for row in answer.components
            for c in row.get("components", [])
            if c.get("label") == "Follow"
        ]
        click = await w.emu.click_component(answer.id, str(button["custom_id"]), w.carol.id)
        assert "You'll get a DM" in (await click.wait_final()).content

        await admin_poll(w)  # day one: v1 is new
        await wait_delivered(bot)
        assert w.emu.dm_messages(w.dave.id) == [] and w.emu.dm_messages(w.carol.id) == []

        v2 = replace(FRESH, version=2, announce_type=AnnounceType.REPLACE)
        w.arxiv.set_rss(rss_listing([v2, OTHER], built=DAY_TWO))
        await admin_poll(w)
        await wait_delivered(bot)
        await admin_poll(w)  # the same listing again
        await wait_delivered(bot)
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:  # and a restart
        await admin_poll(w)
        await wait_delivered(bot)

        withdrawn = replace(
            FRESH,
            version=3,
            announce_type=AnnounceType.REPLACE,
            abstract="This paper has been withdrawn by the author due to an error in Lemma 2.",
        )
        w.arxiv.set_rss(rss_listing([withdrawn], built=DAY_THREE))
        await admin_poll(w)
        await wait_delivered(bot)

    assert posted(w.emu.channel_messages(w.ml.id)) == Counter({FRESH.id: 1, OTHER.id: 1})
    assert posted(w.emu.channel_messages(w.mixed.id)) == Counter({FRESH.id: 3, OTHER.id: 1})
    mixed = notes(w.emu.channel_messages(w.mixed.id))[FRESH.id]
    assert "New version v2, announced 2025-01-08" in mixed[1]
    assert "Withdrawn: v3, announced 2025-01-09" in mixed[2]
    for follower in (w.dave, w.carol):
        dms = w.emu.dm_messages(follower.id)
        assert posted(dms) == Counter({FRESH.id: 2}), follower.name
        texts = notes(dms)[FRESH.id]
        assert "New version v2" in texts[0] and "Withdrawn: v3" in texts[1]


async def test_late_cross_list_reaches_the_category_once(world: World) -> None:
    """A paper cross-listed into cs.CL a day after its announcement reaches cs.CL channels
    once; channels that already had it get nothing."""
    w = world
    first = paper("2501.00021", "Tokenizers for code", categories=("cs.LG",))
    w.arxiv.set_rss(rss_listing([first]))
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await w.subscribe(w.alice, "category", "cs.LG", w.ml)
        await w.subscribe(w.alice, "category", "cs.CL", w.theory)
        await w.subscribe(w.alice, "category", "cs.LG", w.mixed)
        await w.subscribe(w.alice, "category", "cs.CL", w.mixed)
        options = {"value": "cs.CL", "channel": w.feed.id, "include_cross": False}
        await w.run(w.bob, "subscribe category", options, channel=w.feed, guild=w.club)
        await admin_poll(w)
        await wait_delivered(bot)

        crossed = replace(first, categories=("cs.LG", "cs.CL"), announce_type=AnnounceType.CROSS)
        w.arxiv.set_rss(rss_listing([crossed], built=DAY_TWO))
        await admin_poll(w)
        await wait_delivered(bot)
        await admin_poll(w)
        await wait_delivered(bot)
    expected = {w.ml.id: 1, w.theory.id: 1, w.mixed.id: 1, w.feed.id: 0}
    for channel_id, times in expected.items():
        assert posted(w.emu.channel_messages(channel_id))[first.id] == times, channel_id


async def test_journal_reference_appearing_gives_one_published_alert(world: World) -> None:
    """A followed paper that gains a journal reference gives its followers one "published"
    alert; checking again, or a paper already published when followed, gives none."""
    w = world
    known = replace(OTHER, journal_ref="Phys. Rev. D 1, 1 (2020)")
    w.arxiv.set_api(api_feed([FRESH]), id_list=[FRESH.id])
    w.arxiv.set_api(api_feed([known]), id_list=[known.id])
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await w.subscribe(w.dave, "paper", FRESH.id, dm=True)
        await w.subscribe(w.dave, "paper", known.id, dm=True)
        assert await bot.papers.check_publications(force=True) == 0

        published = replace(FRESH, journal_ref="J. Mach. Learn. Res. 26 (2025) 1-30")
        w.arxiv.set_api(api_feed([published]), id_list=[FRESH.id])
        assert await bot.papers.check_publications(force=True) == 1
        assert await bot.papers.check_publications(force=True) == 0
        await wait_delivered(bot)

        listing = await bot.subscriptions.listing(guild_id=None, user_id=w.dave.id)
        follows = [s for s in listing.dm if s.kind is SubscriptionKind.PAPER]
        assert sorted(s.match_key for s in follows) == sorted([FRESH.id, known.id])
        assert await bot.subscriptions.repo.count_for_user(w.dave.id) == 2  # quotas count them
    dms = w.emu.dm_messages(w.dave.id)
    assert posted(dms) == Counter({FRESH.id: 1})
    shown = notes(dms)[FRESH.id][0].replace("\\", "")  # arXiv's text arrives escaped
    assert "Published: J. Mach. Learn. Res. 26 (2025) 1-30" in shown


async def test_forged_follow_button_is_refused(world: World) -> None:
    """A Follow button whose custom_id was tampered with is answered plainly and subscribes
    nobody."""
    w = world
    w.arxiv.set_api(api_feed([FRESH]), id_list=[FRESH.id])
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        answer = await look_up(w, FRESH.id)
        stored = w.emu.world.messages[answer.id]
        for row in stored.components:
            for component in row.get("components", []):
                component["custom_id"] = "pb:follow-paper:../../0704.0000"
        click = await w.emu.click_component(
            answer.id, "pb:follow-paper:../../0704.0000", w.carol.id
        )
        assert "not valid" in (await click.wait_final()).content
        listing = await bot.subscriptions.listing(guild_id=None, user_id=w.carol.id)
        assert listing.dm == []


async def test_migration_from_schema_5_alerts_nothing(world: World) -> None:
    """A store written by the previous version (schema 5: listing polled, alerts sent) is
    migrated; polling the same listing again, replacements included, posts nothing."""
    w = world
    v2 = replace(FRESH, version=2, announce_type=AnnounceType.REPLACE)
    listing = rss_listing([v2, OTHER])
    old = await open_sqlite(w.db_path, migrate=False)
    await old.migrate(target=5)
    stamp = DAY_ONE.isoformat()
    # FRESH was also looked up through the API, so its stored `published` is its v1 date,
    # not the listing's: only the feed state tells that this listing was processed.
    earlier = submitted(FRESH, datetime(2024, 12, 2, 9, 0, tzinfo=UTC))
    # Rows as the schema-5 code wrote them (today's repository writes today's schema).
    for rowid, p in enumerate([earlier, *parse_rss(listing).papers][1:], start=1):
        stored = earlier if p.id == earlier.id else p
        # Schema 5's columns (authors_text went in 0007), so raw SQL, not storage.schema.
        await old.execute(
            text(
                "INSERT INTO papers (rowid, id, version, title, abstract, authors_json,"
                " authors_text, primary_category, categories, published, updated,"
                " announce_type, first_seen) VALUES (:rowid, :id, :version, :title, :abstract,"
                " :authors_json, :authors_text, :primary_category, :categories, :published,"
                " :updated, :announce_type, :first_seen)"
            ),
            {
                "rowid": rowid, "id": stored.id, "version": p.version, "title": p.title,
                "abstract": p.abstract, "authors_json": json.dumps(list(p.authors)),
                "authors_text": ", ".join(p.authors), "primary_category": p.primary_category,
                "categories": " ".join(p.categories),
                "published": stored.published.isoformat() if stored.published else None,
                "updated": p.updated.isoformat() if p.updated else None,
                "announce_type": p.announce_type.value if p.announce_type else None,
                "first_seen": stamp,
            },
        )  # fmt: skip
    subs = SubscriptionRepository(old)
    channel = await subs.ensure_destination(DestinationKind.CHANNEL, w.mixed.id, w.lab.id)
    await subs.add(
        channel, SubscriptionKind.CATEGORY, "cs.LG", "cs.LG", "",
        include_cross=True, include_replacements=True, created_by=w.alice.id, now=DAY_ONE,
    )  # fmt: skip
    for rowid in (1, 2):  # what the old version queued and sent for this listing
        await old.execute(
            text(
                "INSERT INTO deliveries (destination_id, paper_rowid, status, matched_json,"
                " created_at, next_attempt_at, sent_at, message_id)"
                " VALUES (:destination, :rowid, 'sent', :matched, :at, :at, :at, :message)"
            ),
            {"destination": channel.id, "rowid": rowid,
             "matched": json.dumps(["category: cs.LG"]), "at": stamp, "message": rowid},
        )  # fmt: skip
    await FeedStateRepository(old).record_success(
        w.arxiv.rss_url.rstrip("/") + "/cs.LG",
        etag=None,
        last_modified=None,
        build_date=parse_rss(listing).build_date.isoformat(),  # type: ignore[union-attr]
        at=DAY_ONE,
    )
    await old.close()

    w.arxiv.set_rss(listing, etag='"rebuilt-after-upgrade"')
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        assert await bot.papers.db.schema_version() >= 6
        await admin_poll(w)
        await wait_delivered(bot)
        await nothing_pending(bot)
        history = await bot.papers.announcements.for_paper(FRESH.id)
        assert {(a.version, a.announce_type) for a in history} == {(2, AnnounceType.REPLACE)}
        # The next day's listing still alerts, once.
        nxt = paper("2501.00031", "A paper of the next day")
        w.arxiv.set_rss(rss_listing([nxt], built=DAY_TWO))
        await admin_poll(w)
        await wait_delivered(bot)
    assert posted(w.emu.channel_messages(w.mixed.id)) == Counter({"2501.00031": 1})


def submitted(item: Paper, when: datetime) -> Paper:
    """`item` as the API gives it: submitted (v1 published) at `when`."""
    return replace(item, published=when, updated=when)


@pytest.mark.parametrize(
    ("back", "missed_windows"),
    [
        # Down over Wednesday's listing: Thursday's poll recovers Wednesday's papers
        # (submitted Monday 14:00 to Tuesday 14:00 Eastern).
        (DAY_ONE.replace(day=9), "submittedDate:[202501061900 TO 202501071900]"),
        # Down Wednesday to Friday: Monday's poll recovers three listings.
        (DAY_ONE.replace(day=13), "submittedDate:[202501061900 TO 202501091900]"),
    ],
)
async def test_missed_listings_are_recovered_once_and_marked_late(
    world: World, back: datetime, missed_windows: str
) -> None:
    """After an outage of 1 or 3 announcement days the missed listings' papers are found
    through the API, alerted once each and marked late; polling again asks and posts nothing."""
    w = world
    day_papers = {
        8: submitted(paper("2501.00041", "Missed on Wednesday"), DAY_ONE.replace(hour=15)),
        9: submitted(paper("2501.00042", "Missed on Thursday"), DAY_TWO.replace(hour=15)),
        10: submitted(paper("2501.00043", "Missed on Friday"), DAY_THREE.replace(hour=15)),
    }
    missed = {day: p for day, p in day_papers.items() if day < back.day}
    elsewhere = submitted(
        paper("2501.00044", "Another field", categories=("math.PR",)), DAY_ONE.replace(hour=16)
    )
    w.arxiv.set_api(api_feed([*missed.values(), elsewhere]))
    w.arxiv.set_rss(rss_listing([FRESH]))
    async with running_bot(w.emu, w.db_path, w.arxiv) as bot:
        await w.subscribe(w.alice, "category", "cs.LG", w.ml)
        await admin_poll(w)
        await wait_delivered(bot)
        assert not [r for r in w.arxiv.requests if r.path.startswith("/api")]

        w.arxiv.set_rss(rss_listing([OTHER], built=back))
        await admin_poll(w)
        await wait_delivered(bot)
        asked = [r.query.get("search_query") for r in w.arxiv.requests if r.path.startswith("/api")]
        assert asked == [f"cat:cs.LG AND {missed_windows}"]
        await admin_poll(w)  # again: nothing new is asked or posted
        await wait_delivered(bot)
        assert len([r for r in w.arxiv.requests if r.path.startswith("/api")]) == 1

    shown = posted(w.emu.channel_messages(w.ml.id))
    assert shown == Counter([FRESH.id, OTHER.id, *(p.id for p in missed.values())])
    texts = notes(w.emu.channel_messages(w.ml.id))
    for day, item in missed.items():
        assert f"Late alert: announced 2025-01-{day:02d}" in texts[item.id][0]
    assert "Late alert" not in texts[OTHER.id][0]


async def test_status_shows_the_last_listings_and_why_none_today(world: World) -> None:
    """/paperbell status counts each listing's announcements by type and says plainly why
    there is no listing today (the test listings are long past)."""
    w = world
    v2 = replace(OTHER, version=2, announce_type=AnnounceType.REPLACE)
    w.arxiv.set_rss(rss_listing([FRESH, v2]))
    async with running_bot(w.emu, w.db_path, w.arxiv):
        await w.subscribe(w.alice, "category", "cs.LG", w.ml)
        await admin_poll(w)
        status = (await w.run(w.alice, "paperbell status")).content
    assert "`2025-01-07  2: 1 new, 1 replace`" in status, status
    assert "arXiv does not announce on Friday or" in status, status
