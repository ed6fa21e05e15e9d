"""REST routes for users, DMs, the application and its commands."""

from __future__ import annotations

import logging
from typing import Any

from ..api import Ctx, RouteTable, api_error, form_error, parse_int, unknown
from ..core import EmulatorCore
from ..state import AppCommand
from ..validation import MAX_COMMANDS, FormErrors, check_command

log = logging.getLogger(__name__)


class UserRoutes(EmulatorCore):
    """Users (@me, by id), opening DMs, the application and command sync."""

    def _add_user_routes(self, table: RouteTable) -> None:
        add = table.add
        add("GET", "/users/@me", self._get_me, "users")
        add("POST", "/users/@me/channels", self._create_dm, "dm")
        add("GET", "/users/{user_id}", self._get_user, "users")
        add("GET", "/oauth2/applications/@me", self._get_application, "app")
        add("GET", "/applications/@me", self._get_application, "app")
        for prefix, bucket, major in (
            ("/applications/{app_id}", "cmd", None),
            ("/applications/{app_id}/guilds/{guild_id}", "gcmd", "guild_id"),
        ):
            add("GET", f"{prefix}/commands", self._list_commands, bucket, major)
            add("PUT", f"{prefix}/commands", self._bulk_commands, f"{bucket}-put", major)
            add("POST", f"{prefix}/commands", self._upsert_command, f"{bucket}-post", major)
            one = f"{prefix}/commands/{{command_id}}"
            add("GET", one, self._get_command, bucket, major)
            add("PATCH", one, self._edit_command, bucket, major)
            add("DELETE", one, self._delete_command, bucket, major)

    async def _get_me(self, ctx: Ctx) -> tuple[int, Any]:
        me = self.world.bot.to_payload()
        me.update(
            {"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US", "bio": ""}
        )
        return 200, me

    async def _get_user(self, ctx: Ctx) -> tuple[int, Any]:
        user = self.world.users.get(parse_int(ctx.params["user_id"]))
        if user is None:
            raise unknown("User", 10013)
        return 200, user.to_payload()

    async def _create_dm(self, ctx: Ctx) -> tuple[int, Any]:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        try:
            user_id = int(body["recipient_id"])
        except (KeyError, TypeError, ValueError):
            errors = FormErrors()
            errors.required(["recipient_id"])
            raise form_error(errors) from None
        if user_id not in self.world.users or user_id == self.world.bot.id:
            raise api_error(400, 50033, "Invalid Recipient(s)")
        channel = self._ensure_dm_channel(user_id)
        return 200, self.world.channel_payload(channel.id)

    async def _get_application(self, ctx: Ctx) -> tuple[int, Any]:
        world = self.world
        owner = next((u for u in world.users.values() if not u.bot), None)
        owner_payload = (owner or world.bot).to_payload()
        return 200, {
            "id": str(world.application_id),
            "name": world.application_name,
            "icon": None,
            "description": "paperbell under test",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": owner_payload,
            "team": None,
            "flags": self.application_flags,
            "bot": world.bot.to_payload(),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "tags": [],
            "approximate_guild_count": len(world.guilds),
            "integration_types_config": {"0": {}},
        }

    def _command_scope(self, ctx: Ctx) -> tuple[int | None, dict[str, AppCommand]]:
        if parse_int(ctx.params["app_id"]) != self.world.application_id:
            raise api_error(403, 50001, "Missing Access")
        if "guild_id" in ctx.params:
            guild_id = parse_int(ctx.params["guild_id"])
            if (
                guild_id not in self.world.guilds
                or self.world.bot.id not in self.world.guilds[guild_id].members
            ):
                raise api_error(403, 50001, "Missing Access")
            return guild_id, self.world.guild_commands.setdefault(guild_id, {})
        return None, self.world.global_commands

    async def _list_commands(self, ctx: Ctx) -> tuple[int, Any]:
        _, scope = self._command_scope(ctx)
        return 200, [c.to_payload() for c in scope.values()]

    async def _bulk_commands(self, ctx: Ctx) -> tuple[int, Any]:
        guild_id, scope = self._command_scope(ctx)
        body = ctx.body
        errors = FormErrors()
        if not isinstance(body, list):
            errors.add([], "BASE_TYPE_LIST", "Must be an array.")
            raise form_error(errors)
        if len(body) > MAX_COMMANDS:
            raise api_error(
                400, 30032, f"Maximum number of application commands reached ({MAX_COMMANDS})"
            )
        seen: set[tuple[int, str]] = set()
        for i, raw in enumerate(body):
            check_command(raw, errors, [i])
            if isinstance(raw, dict):
                key = (int(raw.get("type", 1)), str(raw.get("name")))
                if key in seen:
                    errors.add(
                        [i, "name"],
                        "APPLICATION_COMMANDS_DUPLICATE_NAME",
                        "Application command names must be unique",
                    )
                seen.add(key)
        if errors:
            raise form_error(errors)
        old = dict(scope)
        scope.clear()
        for raw in body:
            existing = old.get(raw["name"])
            if existing is not None:
                scope[existing.name] = existing
            self._store_command(guild_id, scope, raw)
        self._record_sync("PUT", guild_id, [raw["name"] for raw in body])
        return 200, [c.to_payload() for c in scope.values()]

    async def _upsert_command(self, ctx: Ctx) -> tuple[int, Any]:
        guild_id, scope = self._command_scope(ctx)
        errors = FormErrors()
        check_command(ctx.body, errors)
        if errors:
            raise form_error(errors)
        created = ctx.body["name"] not in scope
        if created and len(scope) >= MAX_COMMANDS:
            raise api_error(
                400, 30032, f"Maximum number of application commands reached ({MAX_COMMANDS})"
            )
        command = self._store_command(guild_id, scope, ctx.body)
        self._record_sync("POST", guild_id, [command.name])
        return (201 if created else 200), command.to_payload()

    def _find_command(self, ctx: Ctx) -> tuple[int | None, dict[str, AppCommand], AppCommand]:
        guild_id, scope = self._command_scope(ctx)
        command_id = parse_int(ctx.params["command_id"])
        for command in scope.values():
            if command.id == command_id:
                return guild_id, scope, command
        raise unknown("application command", 10063)

    async def _get_command(self, ctx: Ctx) -> tuple[int, Any]:
        _, _, command = self._find_command(ctx)
        return 200, command.to_payload()

    async def _edit_command(self, ctx: Ctx) -> tuple[int, Any]:
        guild_id, scope, command = self._find_command(ctx)
        merged = {**command.data, **(ctx.body or {})}
        errors = FormErrors()
        check_command(merged, errors)
        if errors:
            raise form_error(errors)
        del scope[command.name]
        scope[merged["name"]] = command
        updated = self._store_command(guild_id, scope, merged)
        self._record_sync("PATCH", guild_id, [updated.name])
        return 200, updated.to_payload()

    async def _delete_command(self, ctx: Ctx) -> tuple[int, Any]:
        guild_id, scope, command = self._find_command(ctx)
        del scope[command.name]
        self._record_sync("DELETE", guild_id, [command.name])
        return 204, None
