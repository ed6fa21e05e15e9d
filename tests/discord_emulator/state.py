"""The emulated Discord world: who and what exists, and what each user may do.

`World` holds the records of `models` and turns them into the JSON payloads
Discord sends (users, members, channels, guilds, messages); it applies
Discord's permission algorithm (base permissions from roles, then channel
overwrites). Nothing here does I/O; the server and the gateway read and change
this state. The records are re-exported here, where callers have always found them.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from .models import (
    ALL_PERMISSIONS,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    DISCORD_EPOCH_MS,
    JSON,
    AppCommand,
    Attachment,
    Channel,
    ChannelType,
    Guild,
    Member,
    Message,
    MessageFlag,
    Overwrite,
    Permission,
    Role,
    Snowflakes,
    User,
    iso,
    shard_for_guild,
    utcnow,
)

__all__ = [
    "ALL_PERMISSIONS",
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "DISCORD_EPOCH_MS",
    "JSON",
    "AppCommand",
    "Attachment",
    "Channel",
    "ChannelType",
    "Guild",
    "Member",
    "Message",
    "MessageFlag",
    "Overwrite",
    "Permission",
    "Role",
    "Snowflakes",
    "User",
    "World",
    "iso",
    "new_token",
    "shard_for_guild",
    "utcnow",
]

log = logging.getLogger(__name__)


@dataclass
class World:
    """Everything the emulator knows; one bot application per emulator."""

    bot: User
    application_id: int
    token: str
    application_name: str = "paperbell-test"
    users: dict[int, User] = field(default_factory=dict)
    guilds: dict[int, Guild] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    messages: dict[int, Message] = field(default_factory=dict)
    channel_messages: dict[int, list[Message]] = field(default_factory=dict)
    dm_channels: dict[int, int] = field(default_factory=dict)  # user id -> DM channel id
    global_commands: dict[str, AppCommand] = field(default_factory=dict)
    guild_commands: dict[int, dict[str, AppCommand]] = field(default_factory=dict)
    snowflakes: Snowflakes = field(default_factory=Snowflakes)

    # -- lookups -----------------------------------------------------------------

    def member(self, guild_id: int, user_id: int) -> Member | None:
        guild = self.guilds.get(guild_id)
        return None if guild is None else guild.members.get(user_id)

    def guild_channels(self, guild_id: int) -> list[Channel]:
        guild = self.guilds[guild_id]
        return [self.channels[cid] for cid in guild.channel_ids if cid in self.channels]

    def command_by_name(self, name: str, guild_id: int | None) -> AppCommand | None:
        """The command Discord's client would offer here: guild commands shadow global ones."""
        if guild_id is not None:
            found = self.guild_commands.get(guild_id, {}).get(name)
            if found is not None:
                return found
        return self.global_commands.get(name)

    # -- permissions (Discord's documented algorithm) ----------------------------

    def base_permissions(self, guild_id: int, user_id: int) -> int:
        guild = self.guilds[guild_id]
        if guild.owner_id == user_id:
            return ALL_PERMISSIONS
        member = guild.members.get(user_id)
        perms = guild.everyone.permissions
        if member is not None:
            for role_id in member.role_ids:
                role = guild.roles.get(role_id)
                if role is not None:
                    perms |= role.permissions
        if perms & Permission.ADMINISTRATOR:
            return ALL_PERMISSIONS
        return perms

    def channel_permissions(self, channel_id: int, user_id: int) -> int:
        channel = self.channels[channel_id]
        if channel.guild_id is None:
            return ALL_PERMISSIONS & ~(Permission.ADMINISTRATOR | Permission.MANAGE_CHANNELS)
        base = self.base_permissions(channel.guild_id, user_id)
        if base == ALL_PERMISSIONS:
            return ALL_PERMISSIONS
        source = channel
        if channel.is_thread and channel.parent_id in self.channels:
            source = self.channels[channel.parent_id]  # threads inherit the parent's overwrites
        overwrites = source.overwrites
        perms = base
        everyone = overwrites.get(channel.guild_id)
        if everyone is not None:
            perms = (perms & ~everyone.deny) | everyone.allow
        member = self.member(channel.guild_id, user_id)
        allow = deny = 0
        if member is not None:
            for role_id in member.role_ids:
                ow = overwrites.get(role_id)
                if ow is not None and ow.type == 0:
                    allow |= ow.allow
                    deny |= ow.deny
        perms = (perms & ~deny) | allow
        own = overwrites.get(user_id)
        if own is not None and own.type == 1:
            perms = (perms & ~own.deny) | own.allow
        if not perms & Permission.VIEW_CHANNEL:
            return 0
        return perms

    # -- payloads ------------------------------------------------------------------

    def user_payload(self, user_id: int) -> JSON:
        return self.users[user_id].to_payload()

    def member_payload(self, guild_id: int, user_id: int, *, with_user: bool = True) -> JSON:
        member = self.guilds[guild_id].members[user_id]
        payload: JSON = {
            "nick": member.nick,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in member.role_ids],
            "joined_at": iso(member.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
            "unusual_dm_activity_until": None,
        }
        if with_user:
            payload["user"] = self.user_payload(user_id)
        return payload

    def channel_payload(self, channel_id: int, *, for_guild_create: bool = False) -> JSON:
        channel = self.channels[channel_id]
        if channel.is_dm:
            assert channel.recipient_id is not None
            return {
                "id": str(channel.id),
                "type": ChannelType.DM,
                "last_message_id": _opt_str(channel.last_message_id),
                "flags": 0,
                "recipients": [self.user_payload(channel.recipient_id)],
            }
        payload: JSON = {
            "id": str(channel.id),
            "type": channel.type,
            "name": channel.name,
            "position": channel.position,
            "parent_id": _opt_str(channel.parent_id),
            "flags": 0,
            "last_message_id": _opt_str(channel.last_message_id),
            "rate_limit_per_user": 0,
        }
        if not for_guild_create:
            payload["guild_id"] = str(channel.guild_id)
        if channel.is_thread:
            payload.update(
                {
                    "owner_id": str(channel.owner_id or self.bot.id),
                    "message_count": channel.message_count,
                    "total_message_sent": channel.message_count,
                    "member_count": 1,
                    "thread_metadata": {
                        "archived": channel.archived,
                        "auto_archive_duration": 1440,
                        "archive_timestamp": iso(channel.created_at),
                        "locked": channel.locked,
                        "create_timestamp": iso(channel.created_at),
                    },
                }
            )
            del payload["position"]
        else:
            payload["permission_overwrites"] = [
                ow.to_payload() for ow in channel.overwrites.values()
            ]
            payload["nsfw"] = channel.nsfw
            if channel.type in (ChannelType.GUILD_TEXT, ChannelType.GUILD_ANNOUNCEMENT):
                payload["topic"] = channel.topic
                payload["default_auto_archive_duration"] = 1440
                payload["default_thread_rate_limit_per_user"] = 0
        return payload

    def guild_payload(self, guild_id: int, *, include_all_members: bool) -> JSON:
        """The GUILD_CREATE body: the guild with its roles, channels, threads and members.

        No `unavailable` key: discord.py reads `"unavailable": false` as "an outage is
        over" (guild_available) and its absence as "the bot joined" (guild_join).
        """
        guild = self.guilds[guild_id]
        channels = self.guild_channels(guild_id)
        if include_all_members:
            member_ids = list(guild.members)
        else:
            # Without the privileged GUILD_MEMBERS intent Discord only sends the bot itself.
            member_ids = [uid for uid in guild.members if uid == self.bot.id]
        bot_member = guild.members.get(self.bot.id)
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "icon_hash": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "nsfw": False,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "features": [],
            "roles": [role.to_payload() for role in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "soundboard_sounds": [],
            "channels": [
                self.channel_payload(c.id, for_guild_create=True)
                for c in channels
                if not c.is_thread
            ],
            "threads": [
                self.channel_payload(c.id) for c in channels if c.is_thread and not c.archived
            ],
            "members": [self.member_payload(guild_id, uid) for uid in member_ids],
            "member_count": len(guild.members),
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "embedded_activities": [],
            "activity_instances": [],
            "large": len(guild.members) >= 250,
            "lazy": True,
            "joined_at": iso(bot_member.joined_at if bot_member else guild.created_at),
            "incidents_data": None,
            "latest_onboarding_question_id": None,
            "inventory_settings": None,
            "home_header": None,
            "hub_type": None,
            "version": 0,
        }

    def message_payload(self, message: Message) -> JSON:
        author = self.users[message.author_id]
        payload: JSON = {
            "id": str(message.id),
            "type": message.type,
            "channel_id": str(message.channel_id),
            "author": author.to_payload(),
            "content": message.content,
            "timestamp": iso(message.created_at),
            "edited_timestamp": None if message.edited_at is None else iso(message.edited_at),
            "tts": message.tts,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [
                {
                    "id": str(a.id),
                    "filename": a.filename,
                    "size": a.size,
                    "url": f"https://cdn.discordapp.com/attachments/{message.channel_id}/{a.id}/{a.filename}",
                    "proxy_url": f"https://media.discordapp.net/attachments/{message.channel_id}/{a.id}/{a.filename}",
                    "content_type": a.content_type,
                }
                for a in message.attachments
            ],
            "embeds": [_normalised_embed(e) for e in message.embeds],
            "pinned": False,
            "flags": message.flags,
            "components": message.components,
        }
        if message.nonce is not None:
            payload["nonce"] = message.nonce
        if message.webhook_id is not None:
            payload["webhook_id"] = str(message.webhook_id)
        if message.application_id is not None:
            payload["application_id"] = str(message.application_id)
        if message.message_reference is not None:
            payload["message_reference"] = message.message_reference
        if message.interaction_metadata is not None:
            payload["interaction_metadata"] = message.interaction_metadata
        return payload


def _opt_str(value: int | None) -> str | None:
    return None if value is None else str(value)


def _normalised_embed(embed: JSON) -> JSON:
    # Discord answers with the embed it stored, which always carries a type.
    out = dict(embed)
    out.setdefault("type", "rich")
    if "fields" in out:
        out["fields"] = [{"inline": False, **f} for f in out["fields"]]
    return out


def new_token() -> str:
    return secrets.token_urlsafe(48)
