"""/similar end to end: the real discord.py client against the local Discord emulator."""

from __future__ import annotations

import re

from tests.bot.test_commands_e2e import Env, env, is_ephemeral, private_text
from tests.bot.test_hostile_e2e import PAPERS as HOSTILE_PAPERS
from tests.bot.test_hostile_e2e import check
from tests.discord_emulator import CallbackType

__all__ = ["env"]  # the fixture, used by name below

ECG_ID = "2411.17702"  # Finding "Good Views" of Electrocardiogram Signals ...
OTHER_ECG_ID = "2411.17711"  # AnyECG: foundational models for electrocardiogram analysis
_ABS_LINK = re.compile(r"\]\(https://arxiv\.org/abs/([^)]+)\)")


async def test_similar_lists_the_closest_stored_papers_publicly(env: Env) -> None:
    """/similar answers publicly: the asked paper linked, then up to 10 others, best first."""
    handle = await env.run(env.member, "similar", {"paper": f"https://arxiv.org/abs/{ECG_ID}v1"})
    message = await env.reply(handle)
    assert not is_ephemeral(message)
    (embed,) = message.embeds
    assert embed["title"] == f"Similar to arXiv:{ECG_ID}"
    asked, *listed = _ABS_LINK.findall(embed["description"])
    assert asked == ECG_ID and "Electrocardiogram" in embed["description"].split("\n")[0]
    assert len(listed) == 10 and len(set(listed)) == 10 and ECG_ID not in listed
    assert listed[0] == OTHER_ECG_ID
    for paper_id in listed:
        assert await env.bot.papers.papers.get(paper_id) is not None


async def test_similar_refuses_bad_and_unknown_ids(env: Env) -> None:
    """A malformed id is refused privately at once; an id arXiv doesn't know is said so."""
    bad = await env.run(env.member, "similar", {"paper": "not a paper <@&1> @everyone"})
    text = await private_text(env, bad)
    assert "arXiv" in text and "@everyone" not in text
    assert bad.callback is not None and bad.callback.type == CallbackType.CHANNEL_MESSAGE
    # As /cite: after the (public) deferral the answer replaces "thinking…" in place.
    unknown = await env.run(env.member, "similar", {"paper": "2501.99999"})
    message = await env.reply(unknown)
    assert message.content == "arXiv has no paper 2501.99999." and not message.embeds


async def test_similar_fetches_a_paper_the_store_lacks(env: Env) -> None:
    """An id only arXiv knows is fetched and stored; the answer is public either way."""
    handle = await env.run(env.member, "similar", {"paper": "arXiv:1707.08567"})
    message = await env.reply(handle)
    assert not is_ephemeral(message)
    assert await env.bot.papers.papers.get("1707.08567") is not None
    if message.embeds:
        assert message.embeds[0]["title"] == "Similar to arXiv:1707.08567"
    else:
        assert message.content.startswith("No stored paper shares distinctive words")


async def test_similar_keeps_hostile_titles_literal(env: Env) -> None:
    """Links, mentions and markup in stored titles stay text; every link goes to arXiv."""
    await env.bot.papers.ingest(HOSTILE_PAPERS)
    handle = await env.run(env.member, "similar", {"paper": HOSTILE_PAPERS[0].id})
    message = await env.reply(handle)
    (embed,) = message.embeds
    listed = _ABS_LINK.findall(embed["description"])
    assert set(listed[1:]) >= {p.id for p in HOSTILE_PAPERS[1:]}
    assert check(message) == len(listed)
