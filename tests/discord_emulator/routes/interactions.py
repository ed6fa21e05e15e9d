"""REST routes for interaction callbacks and the interaction webhook (follow-ups, @original)."""

from __future__ import annotations

import logging
import time
from typing import Any

from ..api import Ctx, RouteTable, api_error, form_error, parse_int, unknown
from ..interactions import (
    ALLOWED_CALLBACKS,
    CallbackRecord,
    CallbackType,
    InteractionHandle,
    InteractionType,
)
from ..messages import MessageStore
from ..state import JSON, Message, MessageFlag, utcnow
from ..validation import FormErrors, check_choices, check_message, is_empty_message

log = logging.getLogger(__name__)

MESSAGE_FLAGS_SETTABLE = 4 | 64 | 4096 | 32768  # suppress embeds, ephemeral, silent, v2


class InteractionRoutes(MessageStore):
    """Answering interactions: the one callback, then follow-ups and edits by token."""

    def _add_interaction_routes(self, table: RouteTable) -> None:
        add = table.add
        # Interaction callbacks carry their own token and no rate-limit headers.
        cb = "/interactions/{interaction_id}/{token}/callback"
        add("POST", cb, self._interaction_callback, None, auth=False)
        hook = "/webhooks/{app_id}/{token}"
        add("POST", hook, self._execute_webhook, "webhook", "token", auth=False)
        hook_msg = f"{hook}/messages/{{message_id}}"
        add("GET", hook_msg, self._get_webhook_message, "webhook", "token", auth=False)
        add("PATCH", hook_msg, self._edit_webhook_message, "webhook", "token", auth=False)
        add("DELETE", hook_msg, self._delete_webhook_message, "webhook", "token", auth=False)

    async def _interaction_callback(self, ctx: Ctx) -> tuple[int, Any]:
        handle = self._handles_by_id.get(parse_int(ctx.params["interaction_id"]))
        if handle is None or handle.token != ctx.params["token"]:
            raise api_error(404, 10062, "Unknown interaction")
        if handle.callback is not None:
            raise api_error(400, 40060, "Interaction has already been acknowledged.")
        if (
            self.interaction_deadline is not None
            and time.monotonic() - handle.created_monotonic > self.interaction_deadline
        ):
            # Discord forgets an interaction that was not answered within 3 seconds.
            raise api_error(404, 10062, "Unknown interaction")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        cb_type = body.get("type")
        data = body.get("data") or {}
        if cb_type not in ALLOWED_CALLBACKS.get(handle.type, set()):
            errors = FormErrors()
            errors.add(
                ["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type"
            )
            raise form_error(errors)
        world = self.world
        channel = world.channels[handle.channel_id]
        message: Message | None = None
        if cb_type == CallbackType.CHANNEL_MESSAGE:
            errors = FormErrors()
            check_message(data, errors, prefix=["data"])
            if errors:
                raise form_error(errors)
            if is_empty_message(data, len(ctx.files)):
                raise api_error(400, 50006, "Cannot send an empty message")
            message = await self._create_message(
                channel,
                data,
                files=ctx.files,
                source="interaction",
                flags=int(data.get("flags") or 0) & MESSAGE_FLAGS_SETTABLE,
                handle=handle,
                message_type=20 if handle.type == InteractionType.APPLICATION_COMMAND else 0,
            )
            handle.original = message
        elif cb_type == CallbackType.DEFERRED_CHANNEL_MESSAGE:
            flags = MessageFlag.LOADING | (int(data.get("flags") or 0) & MessageFlag.EPHEMERAL)
            message = await self._create_message(
                channel,
                {},
                files=[],
                source="interaction",
                flags=flags,
                handle=handle,
                message_type=20 if handle.type == InteractionType.APPLICATION_COMMAND else 0,
            )
            handle.original = message
        elif cb_type in (CallbackType.DEFERRED_UPDATE_MESSAGE, CallbackType.UPDATE_MESSAGE):
            message = world.messages.get(handle.source_message_id or 0)
            if message is None:
                raise unknown("Message", 10008)
            handle.original = message
            if cb_type == CallbackType.UPDATE_MESSAGE:
                errors = FormErrors()
                check_message(data, errors, prefix=["data"], check_nonce=False)
                if errors:
                    raise form_error(errors)
                self._apply_edit(message, data, ctx.files)
                if not message.ephemeral:
                    await self._dispatch_message("MESSAGE_UPDATE", message)
        elif cb_type == CallbackType.AUTOCOMPLETE_RESULT:
            errors = FormErrors()
            check_choices(data.get("choices"), errors)
            if errors:
                raise form_error(errors)
        elif cb_type == CallbackType.MODAL:
            handle.modal = data
        handle.callback = CallbackRecord(type=cb_type, data=data, at=utcnow(), message=message)
        self._notify()
        interaction_info: JSON = {
            "id": str(handle.id),
            "type": handle.type,
            "activity_instance_id": None,
            "response_message_id": None if message is None else str(message.id),
            "response_message_loading": cb_type == CallbackType.DEFERRED_CHANNEL_MESSAGE,
            "response_message_ephemeral": bool(message is not None and message.ephemeral),
        }
        response: JSON = {"interaction": interaction_info}
        if message is not None and cb_type in (4, 5, 7):
            response["resource"] = {"type": cb_type, "message": world.message_payload(message)}
        return 200, response

    def _webhook_handle(self, ctx: Ctx) -> InteractionHandle:
        handle = self._handles_by_token.get(ctx.params["token"])
        if handle is None or parse_int(ctx.params["app_id"]) != self.world.application_id:
            raise unknown("Webhook", 10015)
        if handle.expired:
            raise api_error(401, 50027, "Invalid Webhook Token")
        if handle.callback is None:
            raise unknown("Webhook", 10015)
        return handle

    async def _execute_webhook(self, ctx: Ctx) -> tuple[int, Any]:
        handle = self._webhook_handle(ctx)
        body = ctx.body if isinstance(ctx.body, dict) else {}
        errors = FormErrors()
        check_message(body, errors)
        if errors:
            raise form_error(errors)
        if is_empty_message(body, len(ctx.files)):
            raise api_error(400, 50006, "Cannot send an empty message")
        original = handle.original
        if (
            handle.callback is not None
            and handle.callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE
            and original is not None
            and original.loading
        ):
            # The first follow-up after a "thinking" deferral replaces the loading message,
            # keeping the deferral's ephemeral flag.
            self._apply_edit(original, body, ctx.files)
            original.edited_at = None
            message = original
            if not message.ephemeral:
                await self._dispatch_message("MESSAGE_UPDATE", message)
        else:
            channel = self.world.channels[handle.channel_id]
            message = await self._create_message(
                channel,
                body,
                files=ctx.files,
                source="followup",
                flags=int(body.get("flags") or 0) & MESSAGE_FLAGS_SETTABLE,
                handle=handle,
                message_type=20 if handle.type == InteractionType.APPLICATION_COMMAND else 0,
            )
        handle.followups.append(message)
        self._notify()
        if ctx.query.get("wait", "false").lower() in ("1", "true"):
            return 200, self.world.message_payload(message)
        return 204, None

    def _webhook_message(self, ctx: Ctx, handle: InteractionHandle) -> Message:
        ref = ctx.params["message_id"]
        if ref == "@original":
            message = handle.original
        else:
            wanted = parse_int(ref)
            message = next((m for m in handle.followups if m.id == wanted), None)
            if message is None and handle.original is not None and handle.original.id == wanted:
                message = handle.original
        if message is None or message.deleted:
            raise unknown("Message", 10008)
        return message

    async def _get_webhook_message(self, ctx: Ctx) -> tuple[int, Any]:
        handle = self._webhook_handle(ctx)
        return 200, self.world.message_payload(self._webhook_message(ctx, handle))

    async def _edit_webhook_message(self, ctx: Ctx) -> tuple[int, Any]:
        handle = self._webhook_handle(ctx)
        message = self._webhook_message(ctx, handle)
        body = ctx.body if isinstance(ctx.body, dict) else {}
        errors = FormErrors()
        check_message(body, errors, check_nonce=False)
        if errors:
            raise form_error(errors)
        was_loading = message.loading
        self._apply_edit(message, body, ctx.files)
        if was_loading:
            message.edited_at = None  # completing a deferral is not shown as an edit
        if message is handle.original:
            handle.edits += 1
        if not message.ephemeral:
            await self._dispatch_message("MESSAGE_UPDATE", message)
        self._notify()
        return 200, self.world.message_payload(message)

    async def _delete_webhook_message(self, ctx: Ctx) -> tuple[int, Any]:
        handle = self._webhook_handle(ctx)
        message = self._webhook_message(ctx, handle)
        message.deleted = True
        self._notify()
        return 204, None
