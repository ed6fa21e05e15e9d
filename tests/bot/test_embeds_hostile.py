"""No text from arXiv (or a user) forms a link, mention or markup, in any renderer.

Each renderer is run on a paper whose title, authors, abstract, comment and
journal reference are hostile, and on its benign twin. Read through a model of
Discord's markdown (tests/bot/markdown_oracle.py), the hostile rendering may
link only to arXiv, mention nobody, and show exactly the markup of the twin:
everything else the text carried stays literal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import discord
import pytest

from bot.cogs.admin import status_text
from bot.cogs.subscriptions import subscribe_reply, subscriptions_section
from bot.discord_bot import StatusReport
from bot.domain.models import (
    Destination,
    DestinationKind,
    FeedState,
    Paper,
    Subscription,
    SubscriptionKind,
)
from bot.embeds import (
    alert_embed,
    code,
    digest_embed,
    link_text,
    paper_embed,
    paper_list_embed,
    safe,
    truncate,
)
from bot.subscribing import SubscribeResult
from bot.views import follow_message
from tests.bot.markdown_oracle import Rendered, render

NOW = datetime(2024, 11, 28, 5, 0, tzinfo=UTC)
HOSTILE = [
    "Zyxwv results](https://evil.example/phish) and [more",
    "[click here](https://evil.example/phish 'title')",
    "<https://evil.example/auto> and <http://evil.example>",
    "code at https://evil.example/bare, also http://evil.example/x.",
    "@everyone @here <@123456789012345678> <@!1> <@&5> <#7> <t:1:R> </cmd:1> <:e:1> <a:e:2>",
    "```py\nprint('x')\n``` and `inline`",
    "# Header\n## two\n-# subtext\n- item\n* star\n+ plus\n1. one\n> quote\n>>> rest",
    "-# starts as subtext",
    "1. starts as a list",
    "**bold** __under__ ~~strike~~ ||spoiler|| *it* _it_",
    "ends in a backslash \\",
    "\\](https://evil.example/escape-the-escape) \\\\[x](https://evil.example/double)",
    "[a [b] c](https://evil.example/nested) ]](https://evil.example/x)",
    "A [Re] title with [brackets] and (parens) (https://evil.example/in-parens)",
]
BENIGN = "Plain words only"


def hostile_paper(text: str) -> Paper:
    return Paper(
        id="2411.17700",
        version=2,
        title=text,
        abstract=f"{text} We study it. {text}",
        authors=(text, "Ada Lovelace", f"{text} Jr"),
        primary_category="cs.LG",
        categories=("cs.LG", "stat.ML"),
        comment=text,
        journal_ref=text,
        published=NOW,
        updated=NOW,
    )


def subscription(value: str, *, dm: bool) -> Subscription:
    destination = Destination(
        id=3, kind=DestinationKind.DM if dm else DestinationKind.CHANNEL, target_id=77,
        guild_id=None if dm else 1,
    )  # fmt: skip
    return Subscription(
        id=12, destination=destination, kind=SubscriptionKind.KEYWORD, value=value,
        match_key="x", include_cross=True, include_replacements=False, created_by=5,
        created_at=NOW,
    )  # fmt: skip


def embed_texts(embed: discord.Embed) -> list[str]:
    """The parts of an embed Discord renders as markdown (author name and footer are plain)."""
    data = embed.to_dict()
    texts = [str(data.get("title", "")), str(data.get("description", ""))]
    texts += [str(f["value"]) for f in data.get("fields", [])]
    return texts


Renderer = Callable[[Paper, str], list[str]]


def _search(p: Paper, text: str) -> list[str]:
    return embed_texts(paper_list_embed([p], title="Search: " + truncate(safe(text), 200), page=0))


def _author(p: Paper, text: str) -> list[str]:
    intro = f"*Matched spellings:* {truncate(safe(', '.join(p.authors)), 600)}"
    embed = paper_list_embed(
        [p], title=f"Papers by {safe(text)}", page=0, intro=intro, omit_authors=p.authors[:1]
    )
    return embed_texts(embed)


def _digest(p: Paper, text: str) -> list[str]:
    twin = replace(p, id="2411.17701", title=p.title + " two")
    return embed_texts(digest_embed([(p, ["x"]), (twin, ["y"])], title="2 new papers on arXiv"))


def _subscribe_reply(p: Paper, text: str) -> list[str]:
    result = SubscribeResult(subscription(text, dm=True), True, matched_names=p.authors)
    return [subscribe_reply(result, 0, None), subscribe_reply(result, 3, "<#77>")]


def _listing(p: Paper, text: str) -> list[str]:
    subs = [subscription(text, dm=False), subscription(p.title, dm=True)]
    return [subscriptions_section("This server", subs, lambda s: text, "none")]


def _status(p: Paper, text: str) -> list[str]:
    feed = FeedState(url="https://rss.arxiv.org/rss/cs", last_error=text, last_error_at=NOW)
    report = StatusReport(
        feeds=(feed,), last_poll=NOW, next_poll=None, papers=1, backlog=0, subscriptions=1
    )
    return [status_text(report)]


RENDERERS: dict[str, Renderer] = {
    "paper": lambda p, t: embed_texts(paper_embed(p, matched=[t])),
    "alert": lambda p, t: embed_texts(alert_embed(p, [t])),
    "digest": _digest,
    "search": _search,
    "author": _author,
    "subscribe reply": _subscribe_reply,
    "subscriptions list": _listing,
    "follow": lambda p, t: [follow_message(t, True, None), follow_message(t, False, None)],
    "status": _status,
}


def rendered(renderer: Renderer, text: str) -> list[Rendered]:
    return [render(part) for part in renderer(hostile_paper(text), text)]


ARXIV_TARGETS = {"https://arxiv.org/abs/2411.17700", "https://arxiv.org/abs/2411.17701",
                 "https://arxiv.org/pdf/2411.17700v2"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(RENDERERS))
@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_renders_literally(name: str, text: str) -> None:
    """Hostile text links only to arXiv, mentions nobody and adds no markup to the rendering."""
    renderer = RENDERERS[name]
    hostile, benign = rendered(renderer, text), rendered(renderer, BENIGN)
    for got, twin in zip(hostile, benign, strict=True):
        assert got.targets() <= ARXIV_TARGETS, got.links
        assert got.links == [(t, u) for t, u in got.links if u in twin.targets()]
        assert len(got.links) == len(twin.links), (got.links, twin.links)
        assert got.mentions == twin.mentions  # only our own (<#channel>, <t:...>)
        assert got.blocks == twin.blocks
        assert got.inline == twin.inline


def test_escaping_keeps_the_text_readable() -> None:
    """Escaped text shows the same characters: only backslashes and zero-width spaces are added."""
    for text in HOSTILE:
        shown = safe(text).replace("\u200b", "")
        plain = "".join(ch for i, ch in enumerate(shown) if not (ch == "\\" and i + 1 < len(shown)))
        assert plain.replace("\\", "") == " ".join(text.split()).replace("\\", "")


def test_masked_link_text_keeps_our_link_working() -> None:
    """Brackets in a linked title cannot break or redirect our link: it still goes to arXiv."""
    for text in HOSTILE:
        line = f"[{link_text(text)}](https://arxiv.org/abs/2411.17700)"
        result = render(line)
        assert [target for _t, target in result.links] == ["https://arxiv.org/abs/2411.17700"]


def test_code_spans_only_for_plain_tokens() -> None:
    """Categories become code spans; anything with a backtick or space is escaped instead."""
    assert code("cs.LG") == "`cs.LG`"
    assert code("hep-th") == "`hep-th`"
    assert render(code("x`](https://evil.example) `y")).links == []
    assert render(code("x`](https://evil.example) `y")).inline["`"] == 0


def test_the_model_sees_what_the_old_escaping_missed() -> None:
    """The oracle sees the phishing link in a title escaped only by discord.py's escape_markdown."""
    title = discord.utils.escape_markdown(HOSTILE[0])
    line = f"• [{title}](https://arxiv.org/abs/2411.17700)"
    assert "https://evil.example/phish" in render(line).targets()
