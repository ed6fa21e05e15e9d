"""/cite end to end: the real discord.py client against the local Discord emulator."""

from __future__ import annotations

import bibtexparser

from bot.domain.cite import cite
from bot.domain.models import Paper
from tests.bot.test_commands_e2e import (
    STORED_ID,
    Env,
    button_id,
    env,
    is_ephemeral,
    private_text,
)

__all__ = ["env"]  # the fixture, used by name below

LONG_ID = "2403.07266"  # hundreds of authors: more than one message can hold
BACKTICK_ID = "2411.18040"  # TeX quotes (``...'') in its title


async def _stored(env: Env, paper_id: str) -> Paper:
    paper = await env.bot.papers.papers.get(paper_id)
    assert paper is not None
    return paper


async def test_cite_answers_with_a_bibtex_code_block(env: Env) -> None:
    """/cite answers publicly with a ```bibtex block that parses as the stored paper's entry."""
    handle = await env.run(env.member, "cite", {"paper": f"arXiv:{STORED_ID}"})
    message = await env.reply(handle)
    assert not is_ephemeral(message)
    assert message.content.startswith("```bibtex\n") and message.content.endswith("```")
    entries = bibtexparser.loads(message.content.removeprefix("```bibtex\n")[:-3]).entries
    (entry,) = entries
    paper = await _stored(env, STORED_ID)
    assert entry["ENTRYTYPE"] == "misc"
    assert entry["eprint"] == STORED_ID
    assert entry["primaryclass"] == paper.primary_category
    assert entry["author"].split(" and ")[0] == paper.authors[0]
    assert not message.attachments


async def test_long_or_backticked_entries_are_attached(env: Env) -> None:
    """An entry too long for a message, or holding backticks, comes as a .bib attachment."""
    for paper_id in (LONG_ID, BACKTICK_ID):
        handle = await env.run(env.member, "cite", {"paper": paper_id})
        message = await env.reply(handle)
        expected = cite(await _stored(env, paper_id))
        (attachment,) = message.attachments
        assert attachment.filename == f"{expected.key}.bib"
        assert attachment.size == len(expected.bibtex.encode())
        assert paper_id in message.content and "```" not in message.content


async def test_cite_fetches_unknown_papers_and_refuses_bad_ids(env: Env) -> None:
    """An unknown id is fetched from arXiv; a malformed one gets a private, clear answer."""
    handle = await env.run(env.member, "cite", {"paper": "1707.08567"})
    message = await env.reply(handle)
    (entry,) = bibtexparser.loads(message.content.removeprefix("```bibtex\n")[:-3]).entries
    assert entry["eprint"] == "1707.08567"
    bad = await env.run(env.member, "cite", {"paper": "not a paper <@&1> @everyone"})
    text = await private_text(env, bad)
    assert "arXiv" in text and "@everyone" not in text
    unknown = await env.run(env.member, "cite", {"paper": "2501.99999"})
    assert (await env.reply(unknown)).content == "arXiv has no paper 2501.99999."


async def test_cite_button_under_paper_answers_privately(env: Env) -> None:
    """/paper answers carry a Cite button: its BibTeX reaches only the clicker, privately."""
    handle = await env.run(env.member, "paper", {"id": STORED_ID})
    answer = await env.reply(handle)
    click = await env.emu.click_component(answer.id, button_id(answer, "Cite"), env.admin.id)
    await click.wait_response()
    (message,) = await click.wait_followups(1)
    assert is_ephemeral(message)
    (entry,) = bibtexparser.loads(message.content.removeprefix("```bibtex\n")[:-3]).entries
    assert entry["eprint"] == STORED_ID


async def test_forged_cite_button_is_refused(env: Env) -> None:
    """A Cite button whose custom_id was tampered with gets a plain private refusal."""
    handle = await env.run(env.member, "paper", {"id": STORED_ID})
    answer = await env.reply(handle)
    forged = "pb:cite:../../0704.0000"
    for row in env.emu.world.messages[answer.id].components:
        for component in row.get("components", []):
            if str(component.get("custom_id", "")).startswith("pb:cite:"):
                component["custom_id"] = forged
    click = await env.emu.click_component(answer.id, forged, env.member.id)
    text = await private_text(env, click)
    assert "not valid" in text and "/cite" in text


async def test_similar_button_under_paper_answers_privately(env: Env) -> None:
    """/paper answers carry a Similar button: the clicker privately gets the papers most like
    it, the same ones /similar lists; a forged id gets a plain refusal."""
    handle = await env.run(env.member, "paper", {"id": STORED_ID})
    answer = await env.reply(handle)
    click = await env.emu.click_component(answer.id, button_id(answer, "Similar"), env.admin.id)
    await click.wait_response()
    (message,) = await click.wait_followups(1)
    assert is_ephemeral(message)
    (embed,) = message.embeds
    assert embed["title"] == f"Similar to arXiv:{STORED_ID}"
    expected = await env.bot.papers.similar(STORED_ID, limit=10)
    shown = embed["description"]
    assert expected.hits and all(p.abs_url in shown for p, _ in expected.hits)
    assert f"https://arxiv.org/abs/{STORED_ID})" in shown  # the asked paper, once, in the intro
    forged = "pb:similar:../../0704.0000"
    for row in env.emu.world.messages[answer.id].components:
        for component in row.get("components", []):
            if str(component.get("custom_id", "")).startswith("pb:similar:"):
                component["custom_id"] = forged
    refused = await env.emu.click_component(answer.id, forged, env.member.id)
    assert "not valid" in await private_text(env, refused)
