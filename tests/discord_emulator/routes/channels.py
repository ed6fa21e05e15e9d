"""REST routes for channels and their messages (guild channels, threads and DMs)."""

from __future__ import annotations

import logging
import time
from typing import Any

from ..api import Ctx, RouteTable, api_error, form_error, parse_int, unknown
from ..faults import FaultInjection, fault_error
from ..gateway import Intent
from ..messages import MessageStore
from ..state import JSON, Channel, ChannelType, Message, Permission
from ..validation import FormErrors, check_message, is_empty_message

log = logging.getLogger(__name__)


class ChannelRoutes(MessageStore, FaultInjection):
    """Channel reads, typing, and message list/get/post/edit/delete with Discord's checks."""

    def _add_channel_routes(self, table: RouteTable) -> None:
        add = table.add
        ch = "/channels/{channel_id}"
        add("GET", ch, self._get_channel, "channel", "channel_id")
        add("GET", f"{ch}/messages", self._list_messages, "messages-get", "channel_id")
        add("POST", f"{ch}/messages", self._post_message, "messages-post", "channel_id")
        msg = f"{ch}/messages/{{message_id}}"
        add("GET", msg, self._get_channel_message, "message-get", "channel_id")
        add("PATCH", msg, self._edit_channel_message, "message-patch", "channel_id")
        add("DELETE", msg, self._delete_channel_message, "message-delete", "channel_id")
        add("POST", f"{ch}/typing", self._typing, "typing", "channel_id")

    def _channel(self, ctx: Ctx, *, need: int = Permission.VIEW_CHANNEL) -> Channel:
        channel = self.world.channels.get(parse_int(ctx.params["channel_id"]))
        if channel is None:
            raise unknown("Channel", 10003)
        if channel.is_dm:
            if channel.recipient_id is None:
                raise unknown("Channel", 10003)
            return channel
        perms = self.world.channel_permissions(channel.id, self.world.bot.id)
        if not perms & Permission.VIEW_CHANNEL:
            raise api_error(403, 50001, "Missing Access")
        if need & ~perms:
            raise api_error(403, 50013, "Missing Permissions")
        return channel

    async def _get_channel(self, ctx: Ctx) -> tuple[int, Any]:
        return 200, self.world.channel_payload(self._channel(ctx).id)

    async def _typing(self, ctx: Ctx) -> tuple[int, Any]:
        self._channel(ctx, need=Permission.SEND_MESSAGES)
        return 204, None

    async def _list_messages(self, ctx: Ctx) -> tuple[int, Any]:
        channel = self._channel(ctx)
        if not channel.is_dm:
            self._channel(ctx, need=Permission.VIEW_CHANNEL | Permission.READ_MESSAGE_HISTORY)
        messages = self.channel_messages(channel.id)
        try:
            limit = max(1, min(100, int(ctx.query.get("limit", "50"))))
        except ValueError:
            limit = 50
        if "before" in ctx.query:
            before = parse_int(ctx.query["before"])
            messages = [m for m in messages if m.id < before]
        if "after" in ctx.query:
            after = parse_int(ctx.query["after"])
            messages = [m for m in messages if m.id > after][:limit]
        newest_first = sorted(messages, key=lambda m: m.id, reverse=True)[:limit]
        return 200, [self.world.message_payload(m) for m in newest_first]

    def _channel_message(self, ctx: Ctx, channel: Channel) -> Message:
        message = self.world.messages.get(parse_int(ctx.params["message_id"]))
        if (
            message is None
            or message.deleted
            or message.channel_id != channel.id
            or message.ephemeral
        ):
            raise unknown("Message", 10008)
        return message

    async def _get_channel_message(self, ctx: Ctx) -> tuple[int, Any]:
        channel = self._channel(ctx)
        return 200, self.world.message_payload(self._channel_message(ctx, channel))

    async def _post_message(self, ctx: Ctx) -> tuple[int, Any]:
        world = self.world
        channel_id = parse_int(ctx.params["channel_id"])
        fault = self._take_fault(channel_id)
        if fault is not None and not fault.after_create:
            raise fault_error(fault)
        channel = world.channels.get(channel_id)
        if channel is None:
            raise unknown("Channel", 10003)
        if channel.is_dm:
            recipient = world.users.get(channel.recipient_id or 0)
            if recipient is None or not recipient.dms_open or recipient.bot:
                raise api_error(403, 50007, "Cannot send messages to this user")
        else:
            need = (
                Permission.SEND_MESSAGES_IN_THREADS
                if channel.is_thread
                else Permission.SEND_MESSAGES
            )
            self._channel(ctx, need=need)
            if channel.type == ChannelType.GUILD_CATEGORY:
                raise api_error(400, 50008, "Cannot send messages in a non-text channel")
            if channel.is_thread and channel.archived:
                raise api_error(400, 50083, "Thread is archived")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        errors = FormErrors()
        check_message(body, errors)
        if errors:
            raise form_error(errors)
        if is_empty_message(body, len(ctx.files)):
            raise api_error(400, 50006, "Cannot send an empty message")
        nonce = body.get("nonce")
        enforce = bool(body.get("enforce_nonce")) and nonce is not None
        key = (channel.id, str(nonce))
        if enforce:
            seen = self._nonces.get(key)
            if seen is not None and time.monotonic() - seen[1] < self.nonce_window:
                existing = world.messages.get(seen[0])
                if existing is not None:
                    self.stats.nonce_duplicates += 1
                    log.info(
                        "nonce %r repeated in channel %s: returning message %s",
                        nonce,
                        channel.id,
                        existing.id,
                    )
                    if fault is not None:
                        raise fault_error(fault)
                    return 200, world.message_payload(existing)
        message = await self._create_message(
            channel,
            body,
            files=ctx.files,
            source="rest",
            flags=int(body.get("flags") or 0) & (4 | 4096 | 32768),
        )
        if enforce:
            self._nonces[key] = (message.id, time.monotonic())
        if fault is not None:
            raise fault_error(fault)
        return 200, world.message_payload(message)

    async def _edit_channel_message(self, ctx: Ctx) -> tuple[int, Any]:
        channel = self._channel(ctx)
        message = self._channel_message(ctx, channel)
        if message.author_id != self.world.bot.id:
            raise api_error(403, 50005, "Cannot edit a message authored by another user")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        errors = FormErrors()
        check_message(body, errors, check_nonce=False)
        if errors:
            raise form_error(errors)
        self._apply_edit(message, body, ctx.files)
        await self._dispatch_message("MESSAGE_UPDATE", message)
        self._notify()
        return 200, self.world.message_payload(message)

    async def _delete_channel_message(self, ctx: Ctx) -> tuple[int, Any]:
        channel = self._channel(ctx)
        message = self._channel_message(ctx, channel)
        if message.author_id != self.world.bot.id and not channel.is_dm:
            self._channel(ctx, need=Permission.MANAGE_MESSAGES)
        message.deleted = True
        body: JSON = {"id": str(message.id), "channel_id": str(channel.id)}
        if channel.guild_id is not None:
            body["guild_id"] = str(channel.guild_id)
        await self.gateway.dispatch(
            "MESSAGE_DELETE",
            body,
            guild_id=channel.guild_id,
            intent=Intent.GUILD_MESSAGES if channel.guild_id else Intent.DIRECT_MESSAGES,
        )
        self._notify()
        return 204, None
