"""Message creation and edits shared by the channel routes and the interaction routes."""

from __future__ import annotations

import logging

from .core import EmulatorCore
from .gateway import Intent
from .interactions import InteractionHandle
from .state import JSON, Attachment, Channel, Message, MessageFlag, utcnow

log = logging.getLogger(__name__)


class MessageStore(EmulatorCore):
    """Creating, editing and announcing messages: channel posts and interaction replies alike."""

    async def _create_message(
        self,
        channel: Channel,
        body: JSON,
        *,
        files: list[Attachment],
        source: str,
        flags: int,
        handle: InteractionHandle | None = None,
        message_type: int = 0,
    ) -> Message:
        world = self.world
        message = Message(
            id=world.snowflakes.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author_id=world.bot.id,
            content=str(body.get("content") or ""),
            embeds=list(body.get("embeds") or []),
            components=list(body.get("components") or []),
            flags=flags,
            allowed_mentions=body.get("allowed_mentions"),
            nonce=body.get("nonce"),
            enforce_nonce=bool(body.get("enforce_nonce")),
            tts=bool(body.get("tts")),
            type=message_type,
            attachments=list(files),
            message_reference=body.get("message_reference"),
            source=source,
        )
        if handle is not None:
            message.webhook_id = world.application_id
            message.application_id = world.application_id
            message.interaction_id = handle.id
            message.interaction_metadata = {
                "id": str(handle.id),
                "type": handle.type,
                "user": world.user_payload(handle.user_id),
                "authorizing_integration_owners": handle.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
        world.messages[message.id] = message
        if source == "rest":
            self.created_messages.append(message)
            self.stats.messages_created += 1
        if not message.ephemeral:
            world.channel_messages.setdefault(channel.id, []).append(message)
            channel.last_message_id = message.id
            if channel.is_thread:
                channel.message_count += 1
            await self._dispatch_message("MESSAGE_CREATE", message)
        self._notify()
        return message

    async def _dispatch_message(self, event: str, message: Message) -> None:
        body = self.world.message_payload(message)
        if message.guild_id is not None:
            body["guild_id"] = str(message.guild_id)
            body["member"] = self.world.member_payload(
                message.guild_id, message.author_id, with_user=False
            )
            intent = Intent.GUILD_MESSAGES
        else:
            intent = Intent.DIRECT_MESSAGES
        await self.gateway.dispatch(event, body, guild_id=message.guild_id, intent=intent)

    def _apply_edit(self, message: Message, body: JSON, files: list[Attachment]) -> None:
        if "content" in body:
            message.content = str(body["content"] or "")
        if "embeds" in body:
            message.embeds = list(body["embeds"] or [])
        if "components" in body:
            message.components = list(body["components"] or [])
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        if "flags" in body and body["flags"] is not None:
            keep = message.flags & MessageFlag.EPHEMERAL
            message.flags = keep | (int(body["flags"]) & (4 | 4096 | 32768))
        if "attachments" in body:
            kept_ids = {
                int(a["id"])
                for a in body["attachments"] or []
                if "id" in a and str(a["id"]).isdigit()
            }
            message.attachments = [a for a in message.attachments if a.id in kept_ids]
        message.attachments.extend(files)
        message.flags &= ~MessageFlag.LOADING
        message.edited_at = utcnow()
