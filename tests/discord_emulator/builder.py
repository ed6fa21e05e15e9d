"""World builder: the test API that creates guilds, members, roles and channels.

Each change is sent to the bot as the gateway event Discord would send.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .core import EmulatorCore
from .gateway import Intent
from .interactions import EmulatorError
from .state import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    JSON,
    Channel,
    ChannelType,
    Guild,
    Member,
    Overwrite,
    Permission,
    Role,
    User,
)
from .validation import FormErrors, check_command

log = logging.getLogger(__name__)


class WorldBuilder(EmulatorCore):
    """The test API that builds users, guilds, roles, members, channels and threads."""

    async def create_user(
        self,
        username: str,
        *,
        global_name: str | None = None,
        bot: bool = False,
        dms_open: bool = True,
    ) -> User:
        user = User(
            id=self.world.snowflakes.next(),
            username=username,
            global_name=global_name,
            bot=bot,
            dms_open=dms_open,
        )
        self.world.users[user.id] = user
        return user

    async def create_guild(
        self,
        name: str = "Test Guild",
        *,
        owner: User | int | None = None,
        shard: tuple[int, int] | None = None,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        with_bot: bool = True,
    ) -> Guild:
        """A guild with @everyone, an owner, and (by default) the bot with its managed role.

        `shard=(shard_id, shard_count)` picks an id that Discord routes to that shard.
        """
        world = self.world
        if owner is None:
            owner_user = await self.create_user(f"{name.lower().replace(' ', '-')}-owner")
            owner_id = owner_user.id
        else:
            owner_id = owner.id if isinstance(owner, User) else int(owner)
        guild_id = world.snowflakes.next(shard=shard)
        guild = Guild(id=guild_id, name=name, owner_id=owner_id)
        guild.roles[guild_id] = Role(
            id=guild_id, guild_id=guild_id, name="@everyone", permissions=everyone_permissions
        )
        world.guilds[guild_id] = guild
        guild.members[owner_id] = Member(guild_id=guild_id, user_id=owner_id)
        if with_bot:
            await self.add_bot(guild_id, permissions=bot_permissions)
        return guild

    async def add_bot(self, guild_id: int, *, permissions: int = DEFAULT_BOT_PERMISSIONS) -> Role:
        """The bot joins (is invited to) the guild; sends GUILD_CREATE to a connected shard."""
        world = self.world
        guild = world.guilds[guild_id]
        role = Role(
            id=world.snowflakes.next(),
            guild_id=guild_id,
            name=world.bot.username,
            permissions=permissions,
            position=1,
            managed=True,
            bot_id=world.bot.id,
        )
        guild.roles[role.id] = role
        guild.members[world.bot.id] = Member(
            guild_id=guild_id, user_id=world.bot.id, role_ids=[role.id]
        )
        for session in self.gateway.ready_shard_sessions(guild_id):
            body = world.guild_payload(
                guild_id, include_all_members=bool(session.intents & Intent.GUILD_MEMBERS)
            )
            await self.gateway._send_dispatch(session, "GUILD_CREATE", body)
        self._notify()
        return role

    async def remove_guild(self, guild_id: int) -> None:
        """The bot is kicked (or the guild deleted): GUILD_DELETE, and the guild is gone."""
        await self.gateway.dispatch("GUILD_DELETE", {"id": str(guild_id)}, guild_id=guild_id)
        guild = self.world.guilds.pop(guild_id)
        for cid in guild.channel_ids:
            self.world.channels.pop(cid, None)
        self._notify()

    def bot_role(self, guild_id: int) -> Role:
        return next(
            r for r in self.world.guilds[guild_id].roles.values() if r.bot_id == self.world.bot.id
        )

    async def create_role(self, guild_id: int, name: str, permissions: int = 0) -> Role:
        guild = self.world.guilds[guild_id]
        role = Role(
            id=self.world.snowflakes.next(),
            guild_id=guild_id,
            name=name,
            permissions=permissions,
            position=len(guild.roles),
        )
        guild.roles[role.id] = role
        await self.gateway.dispatch(
            "GUILD_ROLE_CREATE",
            {"guild_id": str(guild_id), "role": role.to_payload()},
            guild_id=guild_id,
        )
        return role

    async def set_role_permissions(self, guild_id: int, role_id: int, permissions: int) -> None:
        role = self.world.guilds[guild_id].roles[role_id]
        role.permissions = permissions
        await self.gateway.dispatch(
            "GUILD_ROLE_UPDATE",
            {"guild_id": str(guild_id), "role": role.to_payload()},
            guild_id=guild_id,
        )

    async def set_bot_permissions(self, guild_id: int, permissions: int) -> None:
        await self.set_role_permissions(guild_id, self.bot_role(guild_id).id, permissions)

    async def add_member(
        self,
        guild_id: int,
        user: User | int,
        *,
        roles: Iterable[Role | int] = (),
        nick: str | None = None,
    ) -> Member:
        user_id = user.id if isinstance(user, User) else int(user)
        role_ids = [r.id if isinstance(r, Role) else int(r) for r in roles]
        member = Member(guild_id=guild_id, user_id=user_id, role_ids=role_ids, nick=nick)
        self.world.guilds[guild_id].members[user_id] = member
        body = self.world.member_payload(guild_id, user_id)
        body["guild_id"] = str(guild_id)
        await self.gateway.dispatch(
            "GUILD_MEMBER_ADD", body, guild_id=guild_id, intent=Intent.GUILD_MEMBERS
        )
        return member

    async def create_member(
        self,
        guild_id: int,
        username: str,
        *,
        admin: bool = False,
        permissions: int | None = None,
        dms_open: bool = True,
    ) -> User:
        """A new user in the guild; `admin` gives an Administrator role, `permissions` a role
        with exactly those bits (on top of @everyone)."""
        user = await self.create_user(username, dms_open=dms_open)
        roles: list[Role] = []
        if admin:
            roles.append(await self.create_role(guild_id, "Admin", Permission.ADMINISTRATOR))
        if permissions is not None:
            roles.append(await self.create_role(guild_id, f"{username}-role", permissions))
        await self.add_member(guild_id, user, roles=roles)
        return user

    async def set_member_roles(
        self, guild_id: int, user_id: int, roles: Iterable[Role | int]
    ) -> None:
        member = self.world.guilds[guild_id].members[user_id]
        member.role_ids = [r.id if isinstance(r, Role) else int(r) for r in roles]
        body = self.world.member_payload(guild_id, user_id)
        body["guild_id"] = str(guild_id)
        intent = None if user_id == self.world.bot.id else Intent.GUILD_MEMBERS
        await self.gateway.dispatch("GUILD_MEMBER_UPDATE", body, guild_id=guild_id, intent=intent)

    async def create_text_channel(
        self,
        guild_id: int,
        name: str,
        *,
        topic: str | None = None,
        category_id: int | None = None,
        overwrites: Iterable[Overwrite] = (),
        announcement: bool = False,
    ) -> Channel:
        kind = ChannelType.GUILD_ANNOUNCEMENT if announcement else ChannelType.GUILD_TEXT
        return await self._create_guild_channel(
            guild_id, name, kind, topic=topic, parent_id=category_id, overwrites=overwrites
        )

    async def create_category(self, guild_id: int, name: str) -> Channel:
        return await self._create_guild_channel(guild_id, name, ChannelType.GUILD_CATEGORY)

    async def _create_guild_channel(
        self,
        guild_id: int,
        name: str,
        kind: int,
        *,
        topic: str | None = None,
        parent_id: int | None = None,
        overwrites: Iterable[Overwrite] = (),
    ) -> Channel:
        guild = self.world.guilds[guild_id]
        channel = Channel(
            id=self.world.snowflakes.next(),
            type=kind,
            name=name,
            guild_id=guild_id,
            position=len(guild.channel_ids),
            topic=topic,
            parent_id=parent_id,
            overwrites={ow.id: ow for ow in overwrites},
        )
        self.world.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        await self.gateway.dispatch(
            "CHANNEL_CREATE", self.world.channel_payload(channel.id), guild_id=guild_id
        )
        return channel

    async def create_thread(
        self, parent_id: int, name: str, *, owner_id: int | None = None
    ) -> Channel:
        parent = self.world.channels[parent_id]
        assert parent.guild_id is not None, "threads live in guild channels"
        thread = Channel(
            id=self.world.snowflakes.next(),
            type=ChannelType.PUBLIC_THREAD,
            name=name,
            guild_id=parent.guild_id,
            parent_id=parent_id,
            owner_id=owner_id or self.world.bot.id,
        )
        self.world.channels[thread.id] = thread
        self.world.guilds[parent.guild_id].channel_ids.append(thread.id)
        body = self.world.channel_payload(thread.id)
        body["newly_created"] = True
        await self.gateway.dispatch("THREAD_CREATE", body, guild_id=parent.guild_id)
        return thread

    async def set_permission_overwrite(
        self, channel_id: int, target: User | Role | int, *, allow: int = 0, deny: int = 0
    ) -> None:
        """Set a channel overwrite for a role or member (Role/User or a raw id: guild id or role
        ids are roles, anything else a member); allow=deny=0 removes it. Sends CHANNEL_UPDATE."""
        channel = self.world.channels[channel_id]
        assert channel.guild_id is not None
        target_id = target.id if isinstance(target, User | Role) else int(target)
        is_role = target_id in self.world.guilds[channel.guild_id].roles
        if allow == 0 and deny == 0:
            channel.overwrites.pop(target_id, None)
        else:
            channel.overwrites[target_id] = Overwrite(
                id=target_id, type=0 if is_role else 1, allow=allow, deny=deny
            )
        await self.gateway.dispatch(
            "CHANNEL_UPDATE", self.world.channel_payload(channel_id), guild_id=channel.guild_id
        )

    async def delete_channel(self, channel_id: int) -> None:
        channel = self.world.channels.pop(channel_id)
        assert channel.guild_id is not None
        self.world.guilds[channel.guild_id].channel_ids.remove(channel_id)
        payload = {
            "id": str(channel.id),
            "type": channel.type,
            "guild_id": str(channel.guild_id),
            "name": channel.name,
            "parent_id": None if channel.parent_id is None else str(channel.parent_id),
            "position": channel.position,
            "permission_overwrites": [],
        }
        event = "THREAD_DELETE" if channel.is_thread else "CHANNEL_DELETE"
        await self.gateway.dispatch(event, payload, guild_id=channel.guild_id)

    def set_dms_open(self, user_id: int, is_open: bool) -> None:
        self.world.users[user_id].dms_open = is_open

    def dm_channel_id(self, user_id: int) -> int | None:
        return self.world.dm_channels.get(user_id)

    def preload_commands(self, commands: Iterable[JSON], *, guild_id: int | None = None) -> None:
        """Register commands as if an earlier deployment had synced them (not counted as a sync).

        For a bot that only syncs when its command set changed and finds nothing changed.
        Takes the bodies discord.py sends (`command.to_dict(tree)`) or earlier payloads.
        """
        scope = (
            self.world.global_commands
            if guild_id is None
            else self.world.guild_commands.setdefault(guild_id, {})
        )
        for raw in commands:
            errors = FormErrors()
            check_command(raw, errors)
            if errors:
                raise EmulatorError(f"invalid command {raw.get('name')!r}: {errors.tree}")
            self._store_command(guild_id, scope, raw)
