"""Tests for the cogs without a gateway: they load, commands fit Discord, replies read right."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest

from bot.cogs.admin import poll_text, status_text
from bot.cogs.papers import parse_since
from bot.cogs.subscriptions import missing_posting_permissions, subscribe_reply
from bot.config import Settings
from bot.discord_bot import EXTENSIONS, PaperbellBot, StatusReport
from bot.domain.errors import InvalidInputError
from bot.domain.models import (
    Destination,
    DestinationKind,
    FeedState,
    Paper,
    Subscription,
    SubscriptionKind,
)
from bot.poll_report import FeedPoll, PollOutcome, PollReport
from bot.runner import build_bot
from bot.subscribing import SubscribeResult
from storage.db import Database

NOW = datetime(2024, 11, 28, 6, 0, tzinfo=UTC)
_NAME = re.compile(r"^[-_a-z0-9]{1,32}$")


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[PaperbellBot]:
    db = await Database.open(tmp_path / "paperbell.db")
    async with aiohttp.ClientSession() as session:
        client = build_bot(Settings(database=str(db.path)), db, session, user_agent="test")
        try:
            for extension in EXTENSIONS:
                await client.load_extension(extension)
            yield client
        finally:
            await db.close()


def _check_options(path: str, options: list[dict[str, Any]]) -> None:
    assert len(options) <= 25, path
    seen_optional = False
    for option in options:
        where = f"{path} {option['name']}"
        assert _NAME.match(option["name"]), where
        assert 1 <= len(option["description"]) <= 100, where
        if option["type"] in (1, 2):  # subcommand (group)
            _check_options(where, option.get("options", []))
            continue
        if option.get("required"):
            assert not seen_optional, f"{where}: required after optional"
        else:
            seen_optional = True
        if option["type"] == 3:  # strings carry a length cap
            assert 1 <= option["max_length"] <= 300, where


async def test_commands_are_registered_and_fit_discord_limits(bot: PaperbellBot) -> None:
    """Every slash command exists once, with names and descriptions Discord accepts."""
    payloads = [command.to_dict(bot.tree) for command in bot.tree.get_commands()]
    names = sorted(p["name"] for p in payloads)
    assert names == [
        "author", "cite", "paper", "paperbell", "search", "similar", "subscribe",
        "subscriptions", "unsubscribe", "why",
    ]  # fmt: skip
    for payload in payloads:
        assert _NAME.match(payload["name"])
        assert 1 <= len(payload["description"]) <= 100, payload["name"]
        _check_options(payload["name"], payload.get("options", []))
    by_name = {p["name"]: p for p in payloads}
    subs = {o["name"] for o in by_name["subscribe"]["options"]}
    assert subs == {"author", "category", "keyword", "paper", "query"}
    admin = by_name["paperbell"]
    assert int(admin["default_member_permissions"]) == discord.Permissions(manage_guild=True).value
    assert {o["name"] for o in admin["options"]} == {"status", "poll", "resume", "digest", "tune"}
    backfill = next(
        o for o in by_name["subscribe"]["options"][0]["options"] if o["name"] == "backfill"
    )
    assert (backfill["min_value"], backfill["max_value"]) == (0, 10)
    why = {o["name"]: o for o in by_name["why"]["options"]}
    assert (why["paper"]["required"], why["channel"].get("required", False)) == (True, False)
    assert sorted(why["channel"]["channel_types"]) == [0, 5]  # text and announcement channels


def test_parse_since() -> None:
    """`since` is a YYYY-MM-DD day read as UTC midnight; anything else is a user error."""
    assert parse_since("2024-11-28") == datetime(2024, 11, 28, tzinfo=UTC)
    assert parse_since(None) is None and parse_since("  ") is None
    for bad in ("28/11/2024", "2024-13-01", "yesterday"):
        with pytest.raises(InvalidInputError, match="YYYY-MM-DD"):
            parse_since(bad)


def test_missing_posting_permissions_names_each_one() -> None:
    """The bot's missing posting permissions are named, in a fixed order."""
    assert missing_posting_permissions(discord.Permissions.none()) == [
        "View Channel", "Send Messages", "Embed Links",
    ]  # fmt: skip
    some = discord.Permissions(view_channel=True, send_messages=True)
    assert missing_posting_permissions(some) == ["Embed Links"]
    every = discord.Permissions(view_channel=True, send_messages=True, embed_links=True)
    assert missing_posting_permissions(every) == []


def _subscription(kind: SubscriptionKind, value: str, *, dm: bool) -> Subscription:
    destination = Destination(
        id=3,
        kind=DestinationKind.DM if dm else DestinationKind.CHANNEL,
        target_id=77,
        guild_id=None if dm else 1,
    )
    return Subscription(
        id=12, destination=destination, kind=kind, value=value, match_key=value,
        include_cross=True, include_replacements=False, created_by=5, created_at=NOW,
    )  # fmt: skip


def test_subscribe_reply_says_what_happens() -> None:
    """The reply names the destination and the target and explains backfill and ambiguity."""
    channel = SubscribeResult(_subscription(SubscriptionKind.CATEGORY, "cs.LG", dm=False), True)
    text = subscribe_reply(channel, 0, "<#77>")
    assert text.startswith("<#77> will get new `cs.LG` papers (subscription #12).")
    assert "Nothing from the past is posted" in text
    author = SubscribeResult(
        _subscription(SubscriptionKind.AUTHOR, "Legg", dm=True), True, backfilled=2,
        matched_names=("Peter Legg", "Shane Legg"),
    )  # fmt: skip
    text = subscribe_reply(author, 5, None)
    assert text.startswith("You'll get a DM for new papers by **Legg**")
    assert "2 recent matching papers are on the way" in text
    assert "Peter Legg, Shane Legg" in text and "different people" in text
    keyword = SubscribeResult(_subscription(SubscriptionKind.KEYWORD, "*bold*", dm=True), True)
    assert "mentioning “\\*bold\\*”" in subscribe_reply(keyword, 3, None)
    assert "No stored paper matched" in subscribe_reply(keyword, 3, None)


def test_status_text_reports_health_without_internals() -> None:
    """Status shows polls, the latest feed error, and the counts."""
    feeds = (
        FeedState(url="https://rss.arxiv.org/rss/cs", last_success=NOW),
        FeedState(
            url="https://rss.arxiv.org/rss/math",
            last_error="HTTP 503 from arXiv",
            last_error_at=NOW,
            consecutive_failures=2,
        ),
    )
    report = StatusReport(
        feeds=feeds, last_poll=NOW, next_poll=None, papers=1234, backlog=1, subscriptions=7,
        paused=2,
    )  # fmt: skip
    text = status_text(report)
    assert f"<t:{int(NOW.timestamp())}:R>" in text
    assert "Next poll: not scheduled" in text
    assert "Feeds: 1 of 2 healthy" in text
    assert "HTTP 503 from arXiv" in text
    assert "Stored: 1,234 papers" in text
    assert (
        "This server: 7 subscriptions (2 paused channels) · waiting to be posted: 1 alert" in text
    )


def test_poll_text() -> None:
    """The poll reply counts new papers, alerts, stale and failed feeds."""
    assert "Nothing to poll" in poll_text(PollReport((), ()))
    new = Paper(
        id="2411.00001", version=1, title="T", abstract="A", authors=("X",),
        primary_category="cs.LG", categories=("cs.LG",),
    )  # fmt: skip
    report = PollReport(
        (
            FeedPoll("u1", PollOutcome.NEW_LISTING, items=3, new=(new,), deliveries=2),
            FeedPoll("u2", PollOutcome.STALE),
            FeedPoll("u3", PollOutcome.ERROR, error="timeout"),
        ),
        ("cs.LG",),
    )
    text = poll_text(report)
    assert text.startswith("Polled 3 feeds: 1 new paper, 2 alerts queued.")
    assert "1 feed still served" in text and "1 feed failed" in text
    assert "u3" not in text and "timeout" not in text
