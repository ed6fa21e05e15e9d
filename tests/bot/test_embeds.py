"""Embeds: Discord's limits, escaping of feed text, grouping alerts into messages."""

from __future__ import annotations

from functools import cache

from bot.arxiv.feeds import parse_rss
from bot.domain.models import Paper
from bot.embeds import (
    ALERT_EMBED_BUDGET,
    EMBED_TOTAL_LIMIT,
    EMBEDS_PER_MESSAGE,
    alert_embed,
    digest_embed,
    group_embeds,
    paper_embed,
    truncate,
)
from tests.arxiv_server import FIXTURES
from tests.bot.markdown_oracle import render


@cache
def listing() -> tuple[Paper, ...]:
    return parse_rss((FIXTURES / "rss2024_new_all-archives_2024-11-28.xml").read_bytes()).papers


def huge_paper() -> Paper:
    return Paper(
        id="2401.00001",
        version=3,
        title="Title " * 200,
        abstract="word " * 3000,
        authors=tuple(f"Author Number{i}" for i in range(400)),
        primary_category="cs.LG",
        categories=tuple(f"cs.{c}" for c in ("LG", "AI", "CL", "CV", "NE", "IR") * 5),
        comment="comment " * 500,
        journal_ref="journal " * 300,
    )


def test_truncate_edges() -> None:
    """truncate never exceeds its limit, also for limits of 0 and 1."""
    for limit in range(0, 12):
        assert len(truncate("abcdefghijklmnop qrstuvwxyz", limit)) <= limit
    assert truncate("short", 10) == "short"


def test_real_alerts_fit_ten_per_message() -> None:
    """Every alert of the real listing stays within the per-alert budget of 600 characters."""
    sizes = [len(alert_embed(p, ["category: cs.LG", "author: Shane Legg"])) for p in listing()]
    assert max(sizes) <= ALERT_EMBED_BUDGET


def test_huge_paper_respects_every_discord_limit() -> None:
    """A paper with absurd fields still yields an embed within Discord's per-field limits."""
    for embed in (
        paper_embed(huge_paper(), matched=["x" * 3000]),
        alert_embed(huge_paper(), ["y"]),
    ):
        data = embed.to_dict()
        assert len(data["title"]) <= 256
        assert len(data["description"]) <= 4096
        assert len(data["author"]["name"]) <= 256
        assert len(data.get("footer", {}).get("text", "")) <= 2048
        assert len(data.get("fields", [])) <= 25
        for field in data.get("fields", []):
            assert len(field["name"]) <= 256 and len(field["value"]) <= 1024
        assert len(embed) <= EMBED_TOTAL_LIMIT


def test_mentions_and_markdown_are_neutralised() -> None:
    """`@everyone`, role/user mentions and markdown in feed text do not render as such."""
    paper = Paper(
        id="2401.00002",
        version=1,
        title="@everyone <@&123> <@&123456789012345678> **bold** _it_",
        abstract="Ping <@456> <@!123456789012345678> and @here `code`",
        authors=("@everyone",),
        primary_category="cs.LG",
        categories=("cs.LG",),
    )
    data = paper_embed(paper).to_dict()
    for text in (data["title"], data["description"]):
        rendered = render(text)
        assert rendered.mentions == [] and not rendered.inline
        assert "@everyone" not in text and "@here" not in text


def test_grouping_respects_count_and_total_size() -> None:
    """Groups hold at most 10 embeds and 6,000 characters, keep order and lose nothing."""
    embeds = [alert_embed(p, ["category: cs.LG"]) for p in listing()[:95]]
    embeds.insert(3, alert_embed(huge_paper(), ["z" * 300]))
    groups = group_embeds(embeds)
    assert [i for g in groups for i in g] == list(range(len(embeds)))
    for group in groups:
        assert 1 <= len(group) <= EMBEDS_PER_MESSAGE
        assert sum(len(embeds[i]) for i in group) <= EMBED_TOTAL_LIMIT


def test_digest_lines_say_what_matched() -> None:
    """Each digest line names what matched, hostile spellings kept literal."""
    first, second = listing()[:2]
    embed = digest_embed(
        [(first, ["author: S. Legg (as <@&123> Legg)"]), (second, ["keyword: diffusion"])],
        title="2 new papers on arXiv",
    )
    lines = (embed.description or "").split("\n")
    assert len(lines) == 2
    assert lines[0].endswith(" · _author: S. Legg \\(as \\<@\u200b&123\\> Legg\\)_")
    assert lines[1].endswith(" · _keyword: diffusion_")
    rendered = render(embed.description or "")
    assert rendered.mentions == []
