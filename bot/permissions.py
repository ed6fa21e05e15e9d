"""Permission checks on the target of an action, resolved at run time.

Discord's `default_member_permissions` only hides a command by default (server
admins can open it to anyone), and `interaction.permissions` are the caller's
rights in the channel where the command runs, which is rarely the channel the
action touches. These helpers resolve the caller's rights in the target
channel from the cached guild: roles, then the channel's overwrites.
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.domain.errors import PermissionDeniedError
from bot.subscribing import ChannelCheck

log = logging.getLogger(__name__)


def caller_permissions_in(
    interaction: discord.Interaction[Any], channel_id: int
) -> discord.Permissions:
    """The caller's permissions in `channel_id` of the interaction's guild; none if unknown.

    A channel of another guild, a channel the bot does not know (deleted, or
    not cached yet) and any DM context all answer "no permissions".
    """
    member = interaction.user
    guild = interaction.guild
    if interaction.guild_id is None or guild is None or not isinstance(member, discord.Member):
        return discord.Permissions.none()
    if channel_id == interaction.channel_id:
        return interaction.permissions  # resolved by Discord itself for this channel
    channel = guild.get_channel_or_thread(channel_id)
    if channel is None:
        return discord.Permissions.none()
    return channel.permissions_for(member)


def viewable_channels(interaction: discord.Interaction[Any]) -> ChannelCheck:
    """`channel_id -> bool`: can the caller see that channel (View Channel, with overwrites)."""
    return lambda channel_id: caller_permissions_in(interaction, channel_id).view_channel


def manageable_channels(interaction: discord.Interaction[Any]) -> ChannelCheck:
    """`channel_id -> bool`: can the caller see and manage that channel (Manage Channels)."""

    def check(channel_id: int) -> bool:
        perms = caller_permissions_in(interaction, channel_id)
        return perms.view_channel and perms.manage_channels

    return check


def require_manage_guild(interaction: discord.Interaction[Any]) -> None:
    """Raise unless the caller has Manage Server here, whatever the command defaults say."""
    if interaction.guild_id is None or not interaction.permissions.manage_guild:
        raise PermissionDeniedError("You need the Manage Server permission to use this command.")
