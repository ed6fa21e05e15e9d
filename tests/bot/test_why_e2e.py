"""/why end to end: the real discord.py client against the local Discord emulator.

The store holds the real 2024-11-28 listing; a poll of it records its
announcements and posts the alerts. math.MG is small in that listing: one new
paper, one replacement, and one paper cross-listed into it from elsewhere.
"""

from __future__ import annotations

import re

from bot.domain.models import DestinationKind
from bot.domain.why import Reason
from bot.why_service import WhyService
from tests.bot.e2e_support import wait_delivered
from tests.bot.test_commands_e2e import Env, env, private_text
from tests.bot.test_permissions_e2e import private_channel

__all__ = ["env"]  # the fixture, used by name below

NEW_MG = "2411.17896"  # new, primary math.MG
REPLACED_MG = "2410.21931"  # a replacement, primary math.MG
CROSS_MG = "2411.18530"  # new, cross-listed into math.MG from another primary


async def why(env: Env, paper: str, channel_id: int | None = None, **kwargs: object) -> str:
    """The member's private /why answer (asked in #general), escapes removed as Discord does."""
    options: dict[str, object] = {"paper": paper}
    if channel_id is not None:
        options["channel"] = channel_id
    user = kwargs.pop("user", env.member)
    handle = await env.run(user, "why", options, **kwargs)  # type: ignore[arg-type]
    return _ESCAPE.sub(r"\1", await private_text(env, handle))  # as Discord shows it


_ESCAPE = re.compile(r"\\([^0-9A-Za-z\s])")


async def subscribe(env: Env, channel_id: int, kind: str, value: str, **options: object) -> None:
    handle = await env.run(
        env.admin, f"subscribe {kind}", {"value": value, "channel": channel_id, **options}
    )
    assert "will get" in (await env.reply(handle)).content


async def test_why_explains_every_reason(env: Env) -> None:
    """Not announced, sent (with the message link), no match, cross-list and replacement
    excluded, paused: each answers privately with its own explanation."""
    paused = await env.emu.create_text_channel(env.guild.id, "paused")
    await subscribe(env, env.papers.id, "category", "math.MG",
                    include_cross=False, include_replacements=False)  # fmt: skip
    await subscribe(env, paused.id, "category", "math.MG")
    await subscribe(env, env.general.id, "keyword", "zyzzyva quasicrystal")
    held = await env.bot.papers.subscriptions.destination_for(DestinationKind.CHANNEL, paused.id)
    assert held is not None
    await env.bot.subscriptions.pause(held.id, "missing permission")

    before = await why(env, NEW_MG, env.papers.id)
    assert "Not announced yet" in before, before

    await env.bot.poll_now()
    await env.bot.deliverer.deliver()
    await wait_delivered(env.bot)

    sent = await why(env, f"https://arxiv.org/abs/{NEW_MG}v1", env.papers.id)
    [message] = [m for m in env.emu.channel_messages(env.papers.id) if NEW_MG in str(m.embeds)]
    link = f"https://discord.com/channels/{env.guild.id}/{env.papers.id}/{message.id}"
    assert sent.splitlines()[1].startswith("Sent. It matched: category: math.MG."), sent
    assert f"[message]({link})" in sent and "<t:" in sent

    replaced = await why(env, REPLACED_MG, env.papers.id)
    assert "as a replacement (v" in replaced, replaced
    assert "category: math.MG (replacements off)" in replaced

    crossed = await why(env, CROSS_MG, env.papers.id)
    assert "announced 2024-11-28 as new" in crossed, crossed  # new in its own primary
    assert "category: math.MG (cross-lists off)" in crossed

    unmatched = await why(env, NEW_MG, env.general.id)
    assert "no subscription here matched it" in unmatched, unmatched
    assert "Subscriptions here: keyword: zyzzyva quasicrystal." in unmatched

    held_back = await why(env, NEW_MG, paused.id)
    assert "alerts here are paused (missing permission)" in held_back, held_back
    assert "It matched: category: math.MG." in held_back


async def test_why_in_dms_and_refusals(env: Env) -> None:
    """/why without a channel explains the caller's DMs; hidden channels, other servers'
    channels and bad ids are refused privately, revealing nothing."""
    hidden = await private_channel(env, "staff")
    await subscribe(env, hidden.id, "category", "math.MG")
    await env.bot.poll_now()
    await env.bot.deliverer.deliver()
    await wait_delivered(env.bot)

    dms = await why(env, NEW_MG, dm=True)
    assert "in your DMs" in dms and "there are no subscriptions here" in dms, dms

    refused = await why(env, NEW_MG, hidden.id)
    assert refused == "You can only ask about channels you can see.", refused
    visible = await why(env, NEW_MG, hidden.id, user=env.admin)
    assert "Sent." in visible, visible

    # Discord resolves a channel option in the caller's own server only; the service
    # also never reads a channel's rows for another server.
    cog = env.bot.get_cog("Why")  # loaded as an extension: its own module object
    service: WhyService = getattr(cog, "service")  # noqa: B009
    foreign = await service.for_channel(NEW_MG, guild_id=env.other_guild.id, channel_id=hidden.id)
    assert (foreign.reason, foreign.sent, foreign.subscriptions) == (Reason.NO_MATCH, (), ())

    bad = await why(env, "not a paper <@&1> @everyone")
    assert "arXiv" in bad and "@everyone" not in bad, bad
