"""Interactions as the emulator sends them and as tests observe their answers.

`build_command_data` turns a test's `{"option": value}` into the `data`
object Discord's client would send for the registered command (option types
from the synced schema, `resolved` users/members/roles/channels, `focused` for
autocomplete). `InteractionHandle` is what `invoke_command`, `autocomplete`,
`click_component` and `submit_modal` return: it records the callback, the
original response, edits and follow-ups, and lets a test await them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .state import JSON, Channel, ChannelType, Message, World, iso

if TYPE_CHECKING:
    from .core import EmulatorCore


class EmulatorError(Exception):
    """A test asked the emulator for something Discord's client could not do."""


class EmulatorTimeoutError(TimeoutError):
    """An awaited event did not happen in time; the message says what was seen instead."""


class InteractionType:
    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class CallbackType:
    PONG = 1
    CHANNEL_MESSAGE = 4
    DEFERRED_CHANNEL_MESSAGE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    AUTOCOMPLETE_RESULT = 8
    MODAL = 9


ALLOWED_CALLBACKS = {
    InteractionType.APPLICATION_COMMAND: {4, 5, 9},
    InteractionType.MESSAGE_COMPONENT: {4, 5, 6, 7, 9},
    InteractionType.AUTOCOMPLETE: {8},
    InteractionType.MODAL_SUBMIT: {4, 5, 6, 7},
}


class OptionType:
    SUB_COMMAND = 1
    SUB_COMMAND_GROUP = 2
    STRING = 3
    INTEGER = 4
    BOOLEAN = 5
    USER = 6
    CHANNEL = 7
    ROLE = 8
    MENTIONABLE = 9
    NUMBER = 10
    ATTACHMENT = 11


@dataclass
class CallbackRecord:
    """The bot's answer to POST /interactions/{id}/{token}/callback."""

    type: int
    data: JSON
    at: datetime
    message: Message | None = None

    @property
    def ephemeral(self) -> bool:
        return bool(int(self.data.get("flags") or 0) & 64)

    @property
    def deferred(self) -> bool:
        return self.type in (
            CallbackType.DEFERRED_CHANNEL_MESSAGE,
            CallbackType.DEFERRED_UPDATE_MESSAGE,
        )

    @property
    def choices(self) -> list[JSON]:
        return list(self.data.get("choices") or [])


@dataclass
class InteractionHandle:
    """One interaction the emulator sent, and everything the bot did with it."""

    id: int
    token: str
    type: int
    guild_id: int | None
    channel_id: int
    user_id: int
    payload: JSON
    emulator: EmulatorCore = field(repr=False)
    created_monotonic: float = field(default_factory=time.monotonic)
    callback: CallbackRecord | None = None
    original: Message | None = None  # the response message (types 4/5) or the clicked one
    followups: list[Message] = field(default_factory=list)
    edits: int = 0
    modal: JSON | None = None
    source_message_id: int | None = None  # component clicks: the message clicked

    @property
    def responded(self) -> bool:
        return self.callback is not None

    @property
    def expired(self) -> bool:
        return time.monotonic() - self.created_monotonic > 15 * 60

    # -- awaiting the bot ----------------------------------------------------------

    async def wait_response(self, timeout: float = 5.0) -> CallbackRecord:
        """The callback (reply, deferral, autocomplete choices, modal, update)."""
        await self.emulator.wait_for(
            lambda: self.callback is not None,
            timeout=timeout,
            what=f"a callback to interaction {self.payload.get('data', {}).get('name', self.id)}",
        )
        assert self.callback is not None
        return self.callback

    async def wait_choices(self, timeout: float = 5.0) -> list[JSON]:
        """Autocomplete choices the bot answered with."""
        record = await self.wait_response(timeout)
        if record.type != CallbackType.AUTOCOMPLETE_RESULT:
            raise EmulatorError(f"interaction was answered with type {record.type}, not 8")
        return record.choices

    def final_message(self) -> Message | None:
        """The message the user ends up seeing, or None while the bot still owes it."""
        cb = self.callback
        if cb is None:
            return None
        if cb.type in (CallbackType.CHANNEL_MESSAGE, CallbackType.UPDATE_MESSAGE):
            return self.original
        if cb.type == CallbackType.DEFERRED_CHANNEL_MESSAGE:
            if self.original is not None and not self.original.loading:
                return self.original
            return None
        if cb.type == CallbackType.DEFERRED_UPDATE_MESSAGE:
            if self.edits:
                return self.original
            return self.followups[0] if self.followups else None
        raise EmulatorError(f"interaction was answered with type {cb.type}, which has no message")

    async def wait_final(self, timeout: float = 5.0) -> Message:
        """The visible result: the reply, or the edit/follow-up that completed a deferral."""
        await self.emulator.wait_for(
            lambda: self.final_message() is not None,
            timeout=timeout,
            what=f"the final response to interaction {self.id}",
            details=self._describe,
        )
        final = self.final_message()
        assert final is not None
        return final

    async def wait_followups(self, count: int, timeout: float = 5.0) -> list[Message]:
        await self.emulator.wait_for(
            lambda: len(self.followups) >= count,
            timeout=timeout,
            what=f"{count} follow-up(s) to interaction {self.id}",
            details=self._describe,
        )
        return list(self.followups)

    async def wait_modal(self, timeout: float = 5.0) -> JSON:
        record = await self.wait_response(timeout)
        if record.type != CallbackType.MODAL:
            raise EmulatorError(f"interaction was answered with type {record.type}, not a modal")
        return record.data

    def _describe(self) -> str:
        cb = self.callback
        return (
            f"callback={None if cb is None else cb.type}, original={self.original!r}, "
            f"followups={len(self.followups)}"
        )


# -- building interaction payloads ---------------------------------------------------


def _walk_command_options(
    options: Sequence[JSON], path: Sequence[str]
) -> tuple[list[str], list[JSON]]:
    """Follow a subcommand path; returns the path taken and the leaf's option schema."""
    taken: list[str] = []
    current = list(options)
    for part in path:
        match = next(
            (
                o
                for o in current
                if o.get("name") == part
                and o.get("type") in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP)
            ),
            None,
        )
        if match is None:
            names = [o.get("name") for o in current if o.get("type") in (1, 2)]
            raise EmulatorError(f"no subcommand {part!r} here; registered: {names}")
        taken.append(part)
        current = list(match.get("options") or [])
    if any(
        o.get("type") in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP) for o in current
    ):
        names = [o.get("name") for o in current]
        raise EmulatorError(f"a subcommand must be chosen; registered: {names}")
    return taken, current


def _snowflake(value: Any) -> int:
    return int(value.id) if hasattr(value, "id") else int(value)


def _convert_option(
    world: World,
    schema: JSON,
    value: Any,
    *,
    guild_id: int | None,
    channel_id: int,
    user_id: int,
    resolved: JSON,
    focused: bool,
) -> Any:
    kind = schema["type"]
    name = schema["name"]
    if focused:
        return str(value)  # the client sends what the user has typed so far
    if kind == OptionType.STRING:
        out: Any = str(value)
    elif kind == OptionType.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise EmulatorError(f"option {name!r} is an integer, got {value!r}")
        out = value
    elif kind == OptionType.NUMBER:
        out = float(value)
    elif kind == OptionType.BOOLEAN:
        out = bool(value)
    elif kind in (OptionType.USER, OptionType.MENTIONABLE):
        target = _snowflake(value)
        if target in world.users:
            resolved.setdefault("users", {})[str(target)] = world.user_payload(target)
            if guild_id is not None and world.member(guild_id, target) is not None:
                member = world.member_payload(guild_id, target, with_user=False)
                member["permissions"] = str(world.channel_permissions(channel_id, target))
                resolved.setdefault("members", {})[str(target)] = member
        elif (
            kind == OptionType.MENTIONABLE
            and guild_id is not None
            and target in world.guilds[guild_id].roles
        ):
            role = world.guilds[guild_id].roles[target]
            resolved.setdefault("roles", {})[str(target)] = role.to_payload()
        else:
            raise EmulatorError(f"option {name!r}: unknown user {target}")
        out = str(target)
    elif kind == OptionType.ROLE:
        target = _snowflake(value)
        if guild_id is None or target not in world.guilds[guild_id].roles:
            raise EmulatorError(f"option {name!r}: unknown role {target} in this guild")
        resolved.setdefault("roles", {})[str(target)] = (
            world.guilds[guild_id].roles[target].to_payload()
        )
        out = str(target)
    elif kind == OptionType.CHANNEL:
        target = _snowflake(value)
        channel = world.channels.get(target)
        if channel is None or channel.guild_id != guild_id:
            raise EmulatorError(f"option {name!r}: unknown channel {target} in this guild")
        allowed = schema.get("channel_types")
        if allowed and channel.type not in allowed:
            raise EmulatorError(
                f"option {name!r} accepts channel types {allowed}, not {channel.type}"
            )
        resolved.setdefault("channels", {})[str(target)] = resolved_channel(world, channel, user_id)
        out = str(target)
    else:
        raise EmulatorError(f"option {name!r}: type {kind} is not supported by the emulator")
    choices = schema.get("choices")
    if choices and out not in [c.get("value") for c in choices]:
        raise EmulatorError(f"option {name!r} must be one of {[c.get('value') for c in choices]}")
    return out


def resolved_channel(world: World, channel: Channel, user_id: int) -> JSON:
    payload: JSON = {
        "id": str(channel.id),
        "name": channel.name,
        "type": channel.type,
        "permissions": str(world.channel_permissions(channel.id, user_id)),
        "parent_id": None if channel.parent_id is None else str(channel.parent_id),
        "guild_id": str(channel.guild_id),
        "flags": 0,
    }
    if channel.is_thread:
        payload["owner_id"] = str(channel.owner_id or world.bot.id)
        payload["thread_metadata"] = {
            "archived": channel.archived,
            "auto_archive_duration": 1440,
            "archive_timestamp": iso(channel.created_at),
            "locked": channel.locked,
        }
    else:
        payload["topic"] = channel.topic
        payload["nsfw"] = channel.nsfw
        payload["position"] = channel.position
    return payload


def build_command_data(
    world: World,
    command: JSON,
    path: Sequence[str],
    options: Mapping[str, Any],
    *,
    guild_id: int | None,
    channel_id: int,
    user_id: int,
    focused: str | None = None,
) -> JSON:
    """The `data` of an APPLICATION_COMMAND (or AUTOCOMPLETE) interaction for this command."""
    taken, schema = _walk_command_options(command.get("options") or [], path)
    by_name = {o["name"]: o for o in schema}
    unknown = set(options) - set(by_name)
    if unknown:
        raise EmulatorError(f"unknown option(s) {sorted(unknown)}; registered: {sorted(by_name)}")
    if focused is not None:
        if focused not in by_name:
            raise EmulatorError(f"focused option {focused!r} is not registered")
        if not by_name[focused].get("autocomplete"):
            raise EmulatorError(f"option {focused!r} has no autocomplete")
        if focused not in options:
            options = {**options, focused: ""}
    else:
        missing = [o["name"] for o in schema if o.get("required") and o["name"] not in options]
        if missing:
            raise EmulatorError(f"required option(s) missing: {missing}")
    resolved: JSON = {}
    leaf: list[JSON] = []
    for opt in schema:  # the client sends options in the registered order
        if opt["name"] not in options:
            continue
        is_focused = opt["name"] == focused
        entry: JSON = {
            "name": opt["name"],
            "type": opt["type"],
            "value": _convert_option(
                world,
                opt,
                options[opt["name"]],
                guild_id=guild_id,
                channel_id=channel_id,
                user_id=user_id,
                resolved=resolved,
                focused=is_focused,
            ),
        }
        if is_focused:
            entry["focused"] = True
        leaf.append(entry)

    # Wrap the leaf options in their subcommand (group) entries, innermost first.
    wrapped = leaf
    nodes = command.get("options") or []
    chain: list[JSON] = []
    for part in taken:
        node = next(o for o in nodes if o.get("name") == part)
        chain.append(node)
        nodes = node.get("options") or []
    for node in reversed(chain):
        wrapped = [{"name": node["name"], "type": node["type"], "options": wrapped}]

    data: JSON = {
        "id": command["id"],
        "name": command["name"],
        "type": command.get("type", 1),
        "options": wrapped,
    }
    if resolved:
        data["resolved"] = resolved
    if command.get("guild_id") is not None:
        data["guild_id"] = command["guild_id"]
    return data


def walk_components(components: Sequence[JSON]) -> Iterator[JSON]:
    for component in components:
        yield component
        yield from walk_components(component.get("components") or [])
        for key in ("accessory", "component"):
            child = component.get(key)
            if isinstance(child, dict):
                yield from walk_components([child])


def modal_submit_components(modal: JSON, values: Mapping[str, Any]) -> list[JSON]:
    """What Discord sends back for a modal: each input's custom_id with the user's value."""

    def answer(component: JSON) -> JSON:
        custom_id = str(component.get("custom_id") or "")
        out: JSON = {"type": component["type"], "id": component.get("id", 0)}
        if custom_id:
            out["custom_id"] = custom_id
        if component["type"] == 4:  # text input
            out["value"] = str(values.get(custom_id, component.get("value") or ""))
        elif custom_id:  # selects
            picked = values.get(custom_id, [])
            out["values"] = [str(v) for v in (picked if isinstance(picked, list) else [picked])]
        return out

    result: list[JSON] = []
    for component in modal.get("components") or []:
        if component.get("type") == 1:
            result.append(
                {
                    "type": 1,
                    "id": component.get("id", 0),
                    "components": [answer(c) for c in component.get("components") or []],
                }
            )
        elif component.get("type") == 18 and isinstance(component.get("component"), dict):
            result.append(
                {
                    "type": 18,
                    "id": component.get("id", 0),
                    "component": answer(component["component"]),
                }
            )
        else:
            result.append({"type": component.get("type"), "id": component.get("id", 0)})
    return result


def interaction_context(channel: Channel) -> int:
    """Discord's InteractionContextType: 0 guild, 1 DM with the bot."""
    return 1 if channel.type == ChannelType.DM else 0
