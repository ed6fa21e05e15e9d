"""Tests for bot.domain.why (the /why reasoning, every reason) and the /why answer's rendering."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from bot.cogs.why import why_reply
from bot.domain.models import (
    AlertEvent,
    Announcement,
    AnnounceType,
    Delivery,
    DeliveryStatus,
    Destination,
    DestinationKind,
    Paper,
    Subscription,
)
from bot.domain.why import RankingFilter, Reason, WhyFacts, explain, message_link
from tests.bot.domain.test_matching import AUTHOR, CATEGORY, KEYWORD, NOW, paper, sub
from tests.bot.markdown_oracle import render

CHANNEL = Destination(1, DestinationKind.CHANNEL, 500, 900)
DM = Destination(2, DestinationKind.DM, 7, None)
PAUSED = replace(CHANNEL, paused_reason="missing permission", paused_at=NOW)
DAY = date(2024, 11, 28)
PAPER = paper(1, title="Length generalization", authors=("Shane Legg",), primary="cs.LG",
              categories=("cs.AI",))  # fmt: skip


def announced(kind: AnnounceType = AnnounceType.NEW, version: int = 1) -> Announcement:
    return Announcement(PAPER.id, version, kind, DAY, ("cs.LG", "cs.AI"))


def delivery(
    status: DeliveryStatus,
    *,
    destination: Destination = CHANNEL,
    event: AlertEvent = AlertEvent.ANNOUNCED,
    message_id: int | None = None,
    error: str | None = None,
) -> Delivery:
    return Delivery(
        id=1,
        destination=destination,
        paper=PAPER,
        status=status,
        matched=("category: cs.LG",),
        attempts=0,
        created_at=NOW,
        next_attempt_at=NOW,
        sent_at=NOW if status is DeliveryStatus.SENT else None,
        message_id=message_id,
        last_error=error,
        event=event,
    )


def facts(
    subs: Sequence[Subscription] = (),
    *,
    destination: Destination | None = CHANNEL,
    announcements: Sequence[Announcement] = (announced(),),
    deliveries: Sequence[Delivery] = (),
    paper: Paper | None = PAPER,
    ranking: RankingFilter | None = None,
) -> WhyFacts:
    return WhyFacts(PAPER.id, paper, announcements, destination, subs, deliveries, ranking)


def test_sent_gives_time_link_and_what_matched() -> None:
    """A sent alert answers SENT with its time, the message link and what matched."""
    answer = explain(facts(deliveries=[delivery(DeliveryStatus.SENT, message_id=42)]))
    assert answer.reason is Reason.SENT
    [alert] = answer.sent
    assert (alert.sent_at, alert.link) == (NOW, "https://discord.com/channels/900/500/42")
    assert answer.matched == ("category: cs.LG",)


def test_dm_alerts_have_no_link() -> None:
    """DM alerts give their time only: the DM channel id is not stored."""
    sent = delivery(DeliveryStatus.SENT, destination=DM, message_id=42)
    assert message_link(DM, 42) is None
    assert explain(facts(destination=DM, deliveries=[sent])).sent[0].link is None


def test_not_announced_when_no_listing_announced_it() -> None:
    """A paper with no announcement rows (looked up or imported only) is not announced yet."""
    subs = [sub(CHANNEL, CATEGORY, "cs.LG")]
    assert explain(facts(subs, announcements=())).reason is Reason.NOT_ANNOUNCED
    assert explain(facts(subs, paper=None, announcements=())).reason is Reason.NOT_ANNOUNCED


def test_no_match_lists_the_destination_subscriptions() -> None:
    """Nothing matched: the answer lists what the destination subscribes to."""
    subs = [sub(CHANNEL, CATEGORY, "math.PR"), sub(CHANNEL, AUTHOR, "Peter Legg")]
    answer = explain(facts(subs))
    assert answer.reason is Reason.NO_MATCH
    assert set(answer.subscriptions) == {"category: math.PR", "author: Peter Legg"}
    assert answer.announcement == announced()


def test_no_subscriptions_at_all() -> None:
    """A destination never set up answers NO_MATCH with no subscriptions."""
    answer = explain(facts(destination=None))
    assert (answer.reason, answer.subscriptions) == (Reason.NO_MATCH, ())


def test_cross_list_excluded_by_include_cross() -> None:
    """A category the paper is only cross-listed in, with include_cross off, is EXCLUDED_CROSS."""
    subs = [sub(CHANNEL, CATEGORY, "cs.AI", include_cross=False)]
    answer = explain(facts(subs, announcements=[announced(AnnounceType.CROSS)]))
    assert answer.reason is Reason.EXCLUDED_CROSS
    assert answer.excluded == ("category: cs.AI (cross-lists off)",)


def test_replacement_excluded_by_include_replacements() -> None:
    """A replacement matched only with include_replacements is EXCLUDED_REPLACEMENT."""
    subs = [sub(CHANNEL, KEYWORD, "length generalization", include_replacements=False)]
    answer = explain(facts(subs, announcements=[announced(AnnounceType.REPLACE, 2)]))
    assert answer.reason is Reason.EXCLUDED_REPLACEMENT
    assert answer.excluded == ("keyword: length generalization (replacements off)",)
    assert answer.announcement is not None and answer.announcement.version == 2


def test_a_match_beats_an_exclusion_of_a_later_version() -> None:
    """With a matching first announcement and an excluded replacement, the match is reported."""
    subs = [sub(CHANNEL, CATEGORY, "cs.LG")]
    both = [announced(), announced(AnnounceType.REPLACE, 2)]
    assert explain(facts(subs, announcements=both)).reason is Reason.NOT_QUEUED


def test_paused_destination_that_would_match() -> None:
    """A paused destination whose subscription matches answers PAUSED, saying what matched."""
    subs = [sub(PAUSED, AUTHOR, "S. Legg")]
    answer = explain(facts(subs, destination=PAUSED))
    assert answer.reason is Reason.PAUSED
    assert answer.matched == ("author: S. Legg (as Shane Legg)",)
    assert answer.paused_reason == "missing permission"


def test_pending_alert_of_a_paused_destination_is_paused() -> None:
    """An alert held in the outbox by a pause answers PAUSED; unpaused it is QUEUED."""
    pending = [delivery(DeliveryStatus.PENDING, destination=PAUSED)]
    assert explain(facts(destination=PAUSED, deliveries=pending)).reason is Reason.PAUSED
    pending = [delivery(DeliveryStatus.PENDING)]
    assert explain(facts(deliveries=pending)).reason is Reason.QUEUED


def test_failed_alert_says_why() -> None:
    """An alert the sender gave up on answers FAILED with its error."""
    failed = [delivery(DeliveryStatus.FAILED, error="Unknown Channel")]
    answer = explain(facts(deliveries=failed))
    assert (answer.reason, answer.error) == (Reason.FAILED, "Unknown Channel")


def test_ranking_filter_extension_point() -> None:
    """When the gatherer reports a ranking filter, the answer is FILTERED with its rule."""
    rule = RankingFilter("top:5", 0.25)
    answer = explain(facts([sub(CHANNEL, CATEGORY, "cs.LG")], ranking=rule))
    assert (answer.reason, answer.ranking) == (Reason.FILTERED, rule)
    sent = [delivery(DeliveryStatus.SENT, message_id=1)]
    assert explain(facts(deliveries=sent, ranking=rule)).reason is Reason.SENT


def test_matches_but_nothing_queued() -> None:
    """A running destination that matches now but has no outbox row answers NOT_QUEUED."""
    answer = explain(facts([sub(CHANNEL, CATEGORY, "cs.LG")]))
    assert (answer.reason, answer.matched) == (Reason.NOT_QUEUED, ("category: cs.LG",))


def test_reply_escapes_hostile_text_and_links_only_our_message() -> None:
    """Hostile titles and subscriptions render literally; the only links are ours."""
    hostile = replace(PAPER, title="[x](https://evil.example) @everyone <@&1>")
    subs = [sub(CHANNEL, KEYWORD, "**bold** <@123> https://evil.example")]
    answer = explain(facts(subs, paper=hostile))
    assert answer.reason is Reason.NO_MATCH
    text = why_reply(answer, "your DMs")
    rendered = render(text)
    assert rendered.mentions == [] and not rendered.blocks
    assert rendered.targets() == {f"https://arxiv.org/abs/{PAPER.id}"}
    assert set(rendered.inline) <= {"*"}  # only our own bold
    sent = explain(facts(paper=hostile, deliveries=[delivery(DeliveryStatus.SENT, message_id=9)]))
    assert render(why_reply(sent, "your DMs")).targets() == {
        f"https://arxiv.org/abs/{PAPER.id}",
        "https://discord.com/channels/900/500/9",
    }


def test_reply_names_every_reason() -> None:
    """Each reason renders its own sentence (so the e2e tests can tell them apart)."""
    subs = [sub(CHANNEL, CATEGORY, "cs.LG")]
    texts = {
        Reason.NOT_ANNOUNCED: why_reply(explain(facts(subs, announcements=())), "x"),
        Reason.NO_MATCH: why_reply(explain(facts([sub(CHANNEL, CATEGORY, "math.PR")])), "x"),
        Reason.PAUSED: why_reply(explain(facts(subs, destination=PAUSED)), "x"),
        Reason.NOT_QUEUED: why_reply(explain(facts(subs)), "x"),
    }
    assert "Not announced yet" in texts[Reason.NOT_ANNOUNCED]
    assert "Subscriptions here: category: math.PR." in texts[Reason.NO_MATCH]
    assert "paused (missing permission)" in texts[Reason.PAUSED]
    assert "announced 2024-11-28 as new" in texts[Reason.NOT_QUEUED]
