"""Posting alerts from the outbox to Discord, exactly once.

The outbox row is the source of truth. Before a message is sent its deliveries
are bound to a batch whose id gives the message's `nonce`; the rows are marked
sent only after Discord confirmed the message. If the process dies after the
POST but before the mark, the restart re-sends the same batch with the same
nonce and Discord answers with the message it already has (`enforce_nonce`),
so every alert appears exactly once.

Destinations are served concurrently, each by one worker that posts its
batches in order. Discord limits each channel to about 5 messages per 5 s, so
a sequential sender would make 50 busy channels take 50 times as long as one.
`SendGate` (`bot.send_gate`) keeps the concurrency polite: a bounded number of
posts wait for an answer at once, and posts are paced under Discord's global limit
once it shows. This module is the outbox drain: claiming, grouping, posting, and
marking each batch sent, retried, failed or paused.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import aiohttp
import discord

from bot.domain.models import Delivery, Destination, DestinationKind
from bot.embeds import alert_embed, digest_embed, group_embeds
from bot.notify import Notifier
from bot.ranker import Ranker
from bot.rating_buttons import rating_view
from bot.send_gate import PACED_POSTS_PER_SECOND, SendGate
from bot.services import utcnow
from bot.subscribing import SubscriptionService
from storage.outbox import DeliveryOutbox

log = logging.getLogger(__name__)

CLAIM_LIMIT = 500
DIGEST_MIN_ITEMS = 4  # digest mode only kicks in when a destination has this many waiting
RETRY_BASE = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
MAX_IN_FLIGHT = 16  # message posts awaiting Discord's answer at once
SHUTDOWN_GRACE = 15.0  # seconds a shutdown waits for the posts in flight


@dataclass(slots=True)
class _Batch:
    """One message's deliveries; `bound` once written to the outbox as a batch."""

    deliveries: list[Delivery]
    bound: bool
    embeds: list[discord.Embed] | None = None  # built while grouping, reused for the post


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    messages: int = 0
    retried: int = 0
    failed: int = 0
    paused_destinations: int = 0


def backoff(attempts: int, base: timedelta = RETRY_BASE) -> timedelta:
    """`base`, then twice that, four times... capped at an hour (30 s, 1 min, 2 min by default)."""
    return min(base * (1 << min(attempts, 10)), MAX_BACKOFF)


class DeliveryObserver(Protocol):
    """Told about every finished pass (`bot.metrics.Metrics`)."""

    def observe_delivery(self, report: DeliveryReport) -> None: ...


class Deliverer:
    """Drains the outbox; one pass at a time, woken by the scheduler or a fresh ingest."""

    def __init__(
        self,
        client: discord.Client,
        outbox: DeliveryOutbox,
        subscriptions: SubscriptionService,
        notifier: Notifier,
        metrics: DeliveryObserver,
        *,
        ranker: Ranker | None = None,
        owns_dms: bool = True,
        max_in_flight: int = MAX_IN_FLIGHT,
        paced_posts_per_second: int = PACED_POSTS_PER_SECOND,
    ) -> None:
        self.client = client
        self.outbox = outbox
        self.subscriptions = subscriptions
        self.notifier = notifier
        self.metrics = metrics
        self.ranker = ranker
        self.owns_dms = owns_dms
        self.gate = SendGate(max_in_flight=max_in_flight, per_second=paced_posts_per_second)
        self.retry_base = RETRY_BASE
        self.shutdown_grace = SHUTDOWN_GRACE
        self.passes = 0  # finished passes, for health checks and tests
        self.totals = DeliveryReport()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[DeliveryReport] | None = None
        self._dm_channels: dict[int, int] = {}
        self._closing = False
        # Per destination, a send() whose message is confirmed but which is still inside
        # discord.py's sleep for the channel's spent bucket.
        self._finishing: dict[int, asyncio.Task[discord.Message]] = {}

    def kick(self) -> None:
        """Start a pass now unless one is running (then it will pick the new rows up)."""
        if self._closing:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run_once(), name="paperbell-delivery")
            self._task.add_done_callback(self._log_crash)

    async def deliver(self) -> None:
        """Run a pass (or join the one running) and wait for it: the scheduler's job."""
        self.kick()
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task})

    @staticmethod
    def _log_crash(task: asyncio.Task[DeliveryReport]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery pass crashed", exc_info=task.exception())

    async def drain(self) -> None:
        """Shutdown: start no new message, wait for those in flight (`shutdown_grace` s at most).

        Alerts not yet posted stay pending for the next start. A post cut off by
        the timeout may have reached Discord; its batch is resent with the same
        nonce next time, so it still appears once.
        """
        self._closing = True
        task, timeout = self._task, self.shutdown_grace
        if task is not None and not task.done():
            _done, pending = await asyncio.wait({task}, timeout=timeout)
            if pending:
                log.warning("delivery still running after %.0f s at shutdown; cancelling", timeout)
                task.cancel()
                await asyncio.wait({task})
        async with self._lock:  # a pass started by someone else
            pass
        for sending in list(self._finishing.values()):
            sending.cancel()  # their messages are confirmed and recorded; only a sleep is left
        try:
            released = await self.outbox.release_claims()
        except Exception:  # shutting down: the leases run out on their own anyway
            log.warning("could not release outbox claims at shutdown", exc_info=True)
        else:
            if released:
                log.info("released claims on pending alerts count=%d", released)

    def _scope(self) -> tuple[list[int] | None, bool]:
        """Which deliveries this process owns: its shards' guilds, and DMs on shard 0."""
        if self.client.shard_count is None or self.client.shard_count <= 1:
            return None, True
        return [g.id for g in self.client.guilds], self.owns_dms

    async def run_once(self) -> DeliveryReport:
        report = DeliveryReport()
        async with self._lock:
            while not self._closing and not self.client.is_closed():
                guild_ids, include_dms = self._scope()
                due = await self.outbox.claim_due(
                    now=utcnow(), limit=CLAIM_LIMIT, guild_ids=guild_ids, include_dms=include_dms
                )
                if not due:
                    break
                by_destination: dict[int, list[Delivery]] = defaultdict(list)
                for delivery in due:
                    by_destination[delivery.destination.id].append(delivery)
                before = report.sent
                await asyncio.gather(
                    *(self._deliver_destination(items, report) for items in by_destination.values())
                )
                if report.sent == before or len(due) < CLAIM_LIMIT:
                    break
            self.passes += 1
        self._add_totals(report)
        self.metrics.observe_delivery(report)
        if report.sent or report.failed or report.retried:
            log.info(
                "delivery pass sent=%d messages=%d retried=%d failed=%d paused=%d",
                report.sent, report.messages, report.retried, report.failed,
                report.paused_destinations,
            )  # fmt: skip
        return report

    def _add_totals(self, report: DeliveryReport) -> None:
        self.totals.sent += report.sent
        self.totals.messages += report.messages
        self.totals.retried += report.retried
        self.totals.failed += report.failed
        self.totals.paused_destinations += report.paused_destinations

    def _batches(
        self, items: Sequence[Delivery], reasons: dict[int, tuple[str, ...]] | None = None
    ) -> list[_Batch]:
        """Bound batches first (a retry must resend exactly the same group), then new groups.

        New groups are bound to their batch only right before they are posted, so
        a destination's first message does not wait for every group to be written.
        """
        existing: dict[int, list[Delivery]] = defaultdict(list)
        fresh: list[Delivery] = []
        for delivery in items:
            if delivery.batch_id is not None:
                existing[delivery.batch_id].append(delivery)
            else:
                fresh.append(delivery)
        batches = [_Batch(existing[key], bound=True) for key in sorted(existing)]
        if fresh and items[0].destination.digest:
            # A digest line has no room for a note: new versions, withdrawals,
            # publications and late alerts keep their own embed.
            plain = [d for d in fresh if d.note is None]
            if len(plain) >= DIGEST_MIN_ITEMS:
                batches += [_Batch(group, bound=False) for group in _digest_groups(plain)]
                fresh = [d for d in fresh if d.note is not None]
        if fresh:
            embeds = [_ranked(alert_embed(d.paper, d.matched, d.note), d, reasons) for d in fresh]
            batches += [
                _Batch([fresh[i] for i in group], bound=False, embeds=[embeds[i] for i in group])
                for group in group_embeds(embeds)
            ]
        return batches

    async def _deliver_destination(self, items: Sequence[Delivery], report: DeliveryReport) -> None:
        """Post one destination's batches in order; stop at the first that must wait."""
        destination = items[0].destination
        batch = _Batch(list(items), bound=False)
        try:
            items, reasons = await self._rank(destination, items)
            for batch in self._batches(items, reasons):
                spent = self._finishing.get(destination.id)
                if spent is not None:
                    # The channel's bucket is spent: wait here, not holding a slot in send().
                    await asyncio.wait({spent})
                if self._closing:
                    return
                if not batch.bound:
                    # Bound before the post: if we die after it, the restart resends this
                    # exact group under the same nonce.
                    ids = [d.id for d in batch.deliveries]
                    if await self.outbox.assign_batch(ids) is None:
                        log.warning("alert batch=pb%d changed under us; next pass", min(ids))
                        return
                if not await self._send_batch(destination, batch, report):
                    return
        except Exception as exc:
            # A bug must not stall the other destinations, nor spin on this one.
            log.exception("delivery to destination=%d failed unexpectedly", destination.id)
            try:
                await self._retry(batch.deliveries, f"internal error: {type(exc).__name__}")
            except Exception:
                log.exception("could not postpone alerts of destination=%d", destination.id)
            report.retried += len(batch.deliveries)

    async def _rank(
        self, destination: Destination, items: Sequence[Delivery]
    ) -> tuple[list[Delivery], dict[int, tuple[str, ...]]]:
        """A rated destination's new alerts in model order, minus those its tuning keeps back.

        Bound batches keep their place and content (a retry resends them as they were).
        """
        fresh = [d for d in items if d.batch_id is None]
        bound = [d for d in items if d.batch_id is not None]
        if not fresh or self.ranker is None:
            return list(items), {}
        try:
            ranked = await self.ranker.rank(destination.id, [d.paper for d in fresh])
        except Exception:  # ranking is a nicety: alerts still go out in arrival order
            log.exception("ranking destination=%d failed; arrival order", destination.id)
            return list(items), {}
        if ranked is None:
            return list(items), {}
        if ranked.kept_back:
            kept = self.ranker.filtered([d.id for d in fresh], ranked.kept_back)
            held = await self.ranker.ratings.keep_back(kept, now=utcnow())
            log.info("alerts kept back by tuning destination=%d count=%d", destination.id, held)
        reasons = {fresh[i].id: terms for i, terms in ranked.reasons.items()}
        return bound + [fresh[i] for i in ranked.order], reasons

    async def _send_batch(
        self, destination: Destination, batch: _Batch, report: DeliveryReport
    ) -> bool:
        """Post one batch as one message; False when the destination's later batches must wait."""
        outbox = self.outbox
        items = batch.deliveries
        ids = [d.id for d in items]
        nonce = f"pb{min(ids)}"
        try:
            channel = await self._channel_for(destination)
            async with self.gate.post(channel.id, nonce) as confirmed:
                sending = asyncio.create_task(self._post(channel, destination, batch, nonce))
                either: set[asyncio.Future[Any]] = {sending, confirmed}
                try:
                    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                except asyncio.CancelledError:
                    sending.cancel()
                    raise
                if sending.done() or not confirmed.done():
                    message_id = sending.result().id
                else:
                    message_id = confirmed.result()
                    self._finishing[destination.id] = sending
                    sending.add_done_callback(lambda task: self._finished(destination.id, task))
        except discord.Forbidden as exc:
            await self._pause(destination, exc)
            report.paused_destinations += 1
            return False
        except discord.NotFound as exc:
            await self._gone(destination, ids, exc)
            report.failed += len(items)
            return False
        except discord.HTTPException as exc:
            if exc.status >= 500 or exc.status == 429:
                await self._retry(items, f"discord {exc.status}")
                report.retried += len(items)
                return False  # keep order within the destination: try the rest later
            log.error(
                "discord rejected alert batch=%s status=%s code=%s", nonce, exc.status, exc.code
            )
            await outbox.mark_failed(ids, error=f"discord {exc.status} code {exc.code}")
            report.failed += len(items)
            return True
        except (discord.RateLimited, aiohttp.ClientError, TimeoutError, OSError) as exc:
            await self._retry(items, f"network: {type(exc).__name__}")
            report.retried += len(items)
            return False
        await outbox.mark_sent(ids, message_id=message_id, at=utcnow())
        report.sent += len(items)
        report.messages += 1
        return True

    @staticmethod
    async def _post(
        channel: discord.PartialMessageable, destination: Destination, batch: _Batch, nonce: str
    ) -> discord.Message:
        items = batch.deliveries
        buttons = rating_view([d.paper.id for d in items])
        if destination.digest and len(items) >= DIGEST_MIN_ITEMS:
            return await channel.send(
                embed=digest_embed(
                    [(d.paper, d.matched) for d in items], title=f"{len(items)} new papers on arXiv"
                ),
                nonce=nonce,
                allowed_mentions=discord.AllowedMentions.none(),
                **_view(buttons),
            )
        return await channel.send(
            embeds=batch.embeds or [alert_embed(d.paper, d.matched, d.note) for d in items],
            nonce=nonce,
            allowed_mentions=discord.AllowedMentions.none(),
            **_view(buttons),
        )

    def _finished(self, destination_id: int, sending: asyncio.Task[discord.Message]) -> None:
        if self._finishing.get(destination_id) is sending:
            del self._finishing[destination_id]
        if not sending.cancelled() and sending.exception() is not None:
            log.warning("confirmed post ended with an error", exc_info=sending.exception())

    async def _channel_for(self, destination: Destination) -> discord.PartialMessageable:
        if destination.kind is DestinationKind.CHANNEL:
            return self.client.get_partial_messageable(
                destination.target_id, guild_id=destination.guild_id
            )
        channel_id = self._dm_channels.get(destination.target_id)
        if channel_id is None:
            dm = await self.client.create_dm(discord.Object(destination.target_id))
            channel_id = self._dm_channels[destination.target_id] = dm.id
        return self.client.get_partial_messageable(channel_id, type=discord.ChannelType.private)

    async def _retry(self, batch: Sequence[Delivery], error: str) -> None:
        attempts = max(d.attempts for d in batch)
        await self.outbox.mark_retry(
            [d.id for d in batch],
            error=error,
            next_attempt_at=utcnow() + backoff(attempts, self.retry_base),
        )
        log.warning(
            "alert batch will be retried batch=pb%d error=%s", min(d.id for d in batch), error
        )

    async def _pause(self, destination: Destination, exc: discord.HTTPException) -> None:
        if destination.kind is DestinationKind.DM:
            reason = "the user does not accept DMs from the bot"
        else:
            reason = "missing permission to post (needs View Channel, Send Messages, Embed Links)"
        await self.subscriptions.pause(destination.id, reason)
        log.warning(
            "destination paused id=%d kind=%s target=%d code=%s",
            destination.id, destination.kind.value, destination.target_id, exc.code,
        )  # fmt: skip
        if destination.kind is DestinationKind.CHANNEL:
            await self.notifier.channel_paused(destination, reason)

    async def _gone(
        self, destination: Destination, ids: Sequence[int], exc: discord.HTTPException
    ) -> None:
        log.warning(
            "destination gone, removing subscriptions id=%d target=%d code=%s",
            destination.id, destination.target_id, exc.code,
        )  # fmt: skip
        await self.outbox.mark_failed(ids, error="channel deleted")
        await self.subscriptions.destination_gone(destination.id)


def _view(view: discord.ui.View | None) -> dict[str, Any]:
    return {} if view is None else {"view": view}


def _ranked(
    embed: discord.Embed, delivery: Delivery, reasons: dict[int, tuple[str, ...]] | None
) -> discord.Embed:
    """Add the model's "ranked because" terms to an alert's footer (plain text: no markup)."""
    terms = (reasons or {}).get(delivery.id)
    if not terms:
        return embed
    where = "you" if delivery.destination.kind is DestinationKind.DM else "this channel"
    line = f"ranked for {where} because: {', '.join(terms)}"[:150]
    footer = embed.footer.text
    embed.set_footer(text=f"{footer}\n{line}" if footer else line)
    return embed


def _digest_groups(items: Sequence[Delivery]) -> list[list[Delivery]]:
    """Split a digest destination's backlog into messages of one compact embed each."""
    from bot.embeds import digest_capacity

    groups: list[list[Delivery]] = []
    rest = list(items)
    while rest:
        size = digest_capacity([(d.paper, d.matched) for d in rest])
        groups.append(rest[:size])
        rest = rest[size:]
    return groups
