"""Interaction driver: a user runs commands, types into options, clicks and submits modals.

Each action reaches the bot as INTERACTION_CREATE, checked as Discord's client checks it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from .core import ATTACHMENT_SIZE_LIMIT, EmulatorCore
from .interactions import (
    EmulatorError,
    InteractionHandle,
    InteractionType,
    build_command_data,
    interaction_context,
    modal_submit_components,
    walk_components,
)
from .state import JSON, Channel, Message, Permission

log = logging.getLogger(__name__)


class InteractionDriver(EmulatorCore):
    """The test API that acts as a user: slash commands, autocomplete, component clicks, modals."""

    async def invoke_command(
        self,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        locale: str = "en-US",
        client_checks: bool = True,
    ) -> InteractionHandle:
        """A user runs `/name [sub [subsub]] options...`; returns once INTERACTION_CREATE is sent.

        The command must have been synced (guild commands shadow global ones). For a DM
        pass guild_id=None and channel_id=None. With `client_checks` the emulator refuses,
        like Discord's client, commands the user could not see (contexts,
        default_member_permissions).
        """
        return await self._command_interaction(
            InteractionType.APPLICATION_COMMAND,
            guild_id,
            channel_id,
            user_id,
            name,
            options or {},
            focused=None,
            locale=locale,
            client_checks=client_checks,
        )

    async def autocomplete(
        self,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        focused: str,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """The user types into option `focused` (its current text is `options[focused]`)."""
        return await self._command_interaction(
            InteractionType.AUTOCOMPLETE,
            guild_id,
            channel_id,
            user_id,
            name,
            options or {},
            focused=focused,
            locale=locale,
            client_checks=True,
        )

    async def _command_interaction(
        self,
        itype: int,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        name: str,
        options: Mapping[str, Any],
        *,
        focused: str | None,
        locale: str,
        client_checks: bool,
    ) -> InteractionHandle:
        world = self.world
        parts = name.strip().lstrip("/").split()
        if not parts:
            raise EmulatorError("empty command name")
        command = world.command_by_name(parts[0], guild_id)
        if command is None:
            raise EmulatorError(
                f"/{parts[0]} is not registered for guild {guild_id} or globally; "
                f"synced: global={sorted(world.global_commands)}, "
                f"guild={sorted(world.guild_commands.get(guild_id or 0, {}))}"
            )
        channel = self._interaction_channel(guild_id, channel_id, user_id)
        cmd_payload = command.to_payload()
        if client_checks:
            self._check_command_visible(cmd_payload, channel, user_id)
        data = build_command_data(
            world,
            cmd_payload,
            parts[1:],
            options,
            guild_id=guild_id,
            channel_id=channel.id,
            user_id=user_id,
            focused=focused,
        )
        return await self._send_interaction(itype, channel, user_id, data, locale=locale)

    def _check_command_visible(self, command: JSON, channel: Channel, user_id: int) -> None:
        context = interaction_context(channel)
        contexts = command.get("contexts")
        if contexts is not None and context not in contexts:
            raise EmulatorError(
                f"/{command['name']} is not offered in context {context} ({contexts})"
            )
        if context == 1 and command.get("dm_permission") is False:
            raise EmulatorError(f"/{command['name']} is not offered in DMs")
        required = command.get("default_member_permissions")
        if context == 0 and required is not None and channel.guild_id is not None:
            perms = self.world.channel_permissions(channel.id, user_id)
            if int(required) & ~perms:
                raise EmulatorError(
                    f"/{command['name']} needs permissions {required}; the user lacks them"
                )

    def _interaction_channel(
        self, guild_id: int | None, channel_id: int | None, user_id: int
    ) -> Channel:
        world = self.world
        if user_id not in world.users:
            raise EmulatorError(f"unknown user {user_id}")
        if guild_id is None:
            if channel_id is not None and world.channels.get(channel_id, None) is not None:
                channel = world.channels[channel_id]
                if not channel.is_dm:
                    raise EmulatorError("a DM interaction needs a DM channel (or channel_id=None)")
                return channel
            return self._ensure_dm_channel(user_id)
        if guild_id not in world.guilds:
            raise EmulatorError(f"unknown guild {guild_id}")
        if world.member(guild_id, user_id) is None:
            raise EmulatorError(f"user {user_id} is not a member of guild {guild_id}")
        if channel_id is None or channel_id not in world.channels:
            raise EmulatorError(f"unknown channel {channel_id}")
        channel = world.channels[channel_id]
        if channel.guild_id != guild_id:
            raise EmulatorError(f"channel {channel_id} is not in guild {guild_id}")
        if not world.channel_permissions(channel_id, user_id) & Permission.VIEW_CHANNEL:
            raise EmulatorError(f"user {user_id} cannot see channel {channel_id}")
        return channel

    async def click_component(
        self,
        message_id: int,
        custom_id: str,
        user_id: int,
        *,
        values: list[str] | None = None,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """The user clicks a button (or picks `values` in a select) on a message."""
        message = self.world.messages.get(message_id)
        if message is None or message.deleted:
            raise EmulatorError(f"unknown message {message_id}")
        component = next(
            (c for c in walk_components(message.components) if c.get("custom_id") == custom_id),
            None,
        )
        if component is None:
            ids = [
                c.get("custom_id")
                for c in walk_components(message.components)
                if c.get("custom_id")
            ]
            raise EmulatorError(
                f"message {message_id} has no component {custom_id!r}; it has {ids}"
            )
        if component.get("disabled"):
            raise EmulatorError(f"component {custom_id!r} is disabled")
        data: JSON = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] in (3, 5, 6, 7, 8):
            data["values"] = [str(v) for v in values or []]
        elif values is not None:
            raise EmulatorError("values are only for select menus")
        channel = self._interaction_channel(message.guild_id, message.channel_id, user_id)
        return await self._send_interaction(
            InteractionType.MESSAGE_COMPONENT,
            channel,
            user_id,
            data,
            locale=locale,
            message=message,
        )

    async def submit_modal(
        self, handle: InteractionHandle, values: Mapping[str, Any], *, locale: str = "en-US"
    ) -> InteractionHandle:
        """The user fills in and submits the modal the bot answered `handle` with."""
        if handle.modal is None:
            raise EmulatorError("that interaction was not answered with a modal")
        channel = self.world.channels[handle.channel_id]
        data = {
            "custom_id": handle.modal.get("custom_id"),
            "components": modal_submit_components(handle.modal, values),
        }
        source = self.world.messages.get(handle.source_message_id or 0)
        return await self._send_interaction(
            InteractionType.MODAL_SUBMIT,
            channel,
            handle.user_id,
            data,
            locale=locale,
            message=source,
        )

    async def _send_interaction(
        self,
        itype: int,
        channel: Channel,
        user_id: int,
        data: JSON,
        *,
        locale: str,
        message: Message | None = None,
    ) -> InteractionHandle:
        world = self.world
        guild_id = channel.guild_id
        await self.wait_for(
            lambda: bool(self.gateway.ready_shard_sessions(guild_id)),
            timeout=self.connect_timeout,
            what=f"a READY gateway session for guild {guild_id}",
        )
        interaction_id = world.snowflakes.next()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)
        channel_payload = world.channel_payload(channel.id)
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(world.application_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "channel": channel_payload,
            "channel_id": str(channel.id),
            "locale": locale,
            "app_permissions": str(world.channel_permissions(channel.id, world.bot.id)),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
            "context": interaction_context(channel),
        }
        if guild_id is not None:
            member = world.member_payload(guild_id, user_id)
            perms = world.channel_permissions(channel.id, user_id)
            member["permissions"] = str(perms)
            channel_payload["permissions"] = str(perms)
            payload.update(
                {
                    "guild_id": str(guild_id),
                    "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
                    "guild_locale": "en-US",
                    "member": member,
                    "authorizing_integration_owners": {"0": str(guild_id)},
                }
            )
        else:
            payload["user"] = world.user_payload(user_id)
            payload["authorizing_integration_owners"] = {"0": "0"}
        if message is not None:
            payload["message"] = world.message_payload(message)
        handle = InteractionHandle(
            id=interaction_id,
            token=token,
            type=itype,
            guild_id=guild_id,
            channel_id=channel.id,
            user_id=user_id,
            payload=payload,
            emulator=self,
            source_message_id=None if message is None else message.id,
        )
        self.interactions.append(handle)
        self._handles_by_id[interaction_id] = handle
        self._handles_by_token[token] = handle
        await self.gateway.dispatch("INTERACTION_CREATE", payload, guild_id=guild_id, intent=None)
        self._notify()
        return handle
