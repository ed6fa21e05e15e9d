"""Discord's request-body limits, answered with Discord's own 400 error shapes.

`FormErrors` builds the nested `{"code": 50035, "errors": {...}, "message":
"Invalid Form Body"}` body Discord sends for a field that breaks a limit, so
discord.py's `HTTPException` text reads the way it does in production.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

JSON = dict[str, Any]

CONTENT_LIMIT = 2000
EMBEDS_PER_MESSAGE = 10
EMBED_TOTAL_LIMIT = 6000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELDS_LIMIT = 25
EMBED_FIELD_NAME_LIMIT = 256
EMBED_FIELD_VALUE_LIMIT = 1024
EMBED_FOOTER_LIMIT = 2048
EMBED_AUTHOR_LIMIT = 256
NONCE_LIMIT = 25
ACTION_ROWS_LIMIT = 5
ROW_CHILDREN_LIMIT = 5
CUSTOM_ID_LIMIT = 100
BUTTON_LABEL_LIMIT = 80
AUTOCOMPLETE_CHOICES_LIMIT = 25
CHOICE_NAME_LIMIT = 100
CHOICE_VALUE_LIMIT = 100

COMPONENTS_V2_FLAG = 1 << 15

Path = Sequence[str | int]


class FormErrors:
    """Collects field errors into Discord's nested `errors` object."""

    def __init__(self) -> None:
        self.tree: JSON = {}

    def add(self, path: Path, code: str, message: str) -> None:
        node = self.tree
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def too_long(self, path: Path, limit: int) -> None:
        self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def required(self, path: Path) -> None:
        self.add(path, "BASE_TYPE_REQUIRED", "This field is required")

    def __bool__(self) -> bool:
        return bool(self.tree)

    def body(self) -> JSON:
        return {"code": 50035, "errors": self.tree, "message": "Invalid Form Body"}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def embed_length(embed: JSON) -> int:
    """Characters that count toward the 6,000 limit shared by all embeds of a message."""
    total = len(_text(embed.get("title"))) + len(_text(embed.get("description")))
    for f in embed.get("fields") or []:
        total += len(_text(f.get("name"))) + len(_text(f.get("value")))
    total += len(_text((embed.get("footer") or {}).get("text")))
    total += len(_text((embed.get("author") or {}).get("name")))
    return total


def check_embeds(embeds: Any, errors: FormErrors, prefix: Path = ()) -> None:
    base = [*prefix, "embeds"]
    if not isinstance(embeds, list):
        errors.add(base, "BASE_TYPE_LIST", "Must be an array.")
        return
    if len(embeds) > EMBEDS_PER_MESSAGE:
        errors.too_long(base, EMBEDS_PER_MESSAGE)
    total = 0
    for i, embed in enumerate(embeds):
        path = [*base, i]
        if not isinstance(embed, dict):
            errors.add(path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        limits = (
            ("title", EMBED_TITLE_LIMIT),
            ("description", EMBED_DESCRIPTION_LIMIT),
        )
        for key, limit in limits:
            if len(_text(embed.get(key))) > limit:
                errors.too_long([*path, key], limit)
        fields = embed.get("fields") or []
        if len(fields) > EMBED_FIELDS_LIMIT:
            errors.too_long([*path, "fields"], EMBED_FIELDS_LIMIT)
        for j, f in enumerate(fields):
            for key, limit in (
                ("name", EMBED_FIELD_NAME_LIMIT),
                ("value", EMBED_FIELD_VALUE_LIMIT),
            ):
                value = f.get(key)
                if value is None or value == "":
                    errors.required([*path, "fields", j, key])
                elif len(_text(value)) > limit:
                    errors.too_long([*path, "fields", j, key], limit)
        footer = embed.get("footer")
        if footer is not None:
            if not footer.get("text"):
                errors.required([*path, "footer", "text"])
            elif len(_text(footer.get("text"))) > EMBED_FOOTER_LIMIT:
                errors.too_long([*path, "footer", "text"], EMBED_FOOTER_LIMIT)
        author = embed.get("author")
        if author is not None:
            if not author.get("name"):
                errors.required([*path, "author", "name"])
            elif len(_text(author.get("name"))) > EMBED_AUTHOR_LIMIT:
                errors.too_long([*path, "author", "name"], EMBED_AUTHOR_LIMIT)
        total += embed_length(embed)
    if total > EMBED_TOTAL_LIMIT:
        errors.add(
            base,
            "MAX_EMBED_SIZE_EXCEEDED",
            f"Embed size exceeds maximum size of {EMBED_TOTAL_LIMIT}",
        )


def check_components(components: Any, flags: int, errors: FormErrors, prefix: Path = ()) -> None:
    base = [*prefix, "components"]
    if not isinstance(components, list):
        errors.add(base, "BASE_TYPE_LIST", "Must be an array.")
        return
    if flags & COMPONENTS_V2_FLAG:
        return  # layout components have their own, much larger limits
    if len(components) > ACTION_ROWS_LIMIT:
        errors.too_long(base, ACTION_ROWS_LIMIT)
    for i, row in enumerate(components):
        children = row.get("components") or []
        if row.get("type") != 1:
            errors.add([*base, i, "type"], "UNION_TYPE_CHOICES", "Value must be one of {1}.")
            continue
        if len(children) > ROW_CHILDREN_LIMIT:
            errors.too_long([*base, i, "components"], ROW_CHILDREN_LIMIT)
        for j, child in enumerate(children):
            path = [*base, i, "components", j]
            custom_id = child.get("custom_id")
            is_link = child.get("type") == 2 and child.get("style") == 5
            if not is_link and child.get("type") in (2, 3, 5, 6, 7, 8) and not custom_id:
                errors.required([*path, "custom_id"])
            if isinstance(custom_id, str) and len(custom_id) > CUSTOM_ID_LIMIT:
                errors.too_long([*path, "custom_id"], CUSTOM_ID_LIMIT)
            label = child.get("label")
            if isinstance(label, str) and len(label) > BUTTON_LABEL_LIMIT:
                errors.too_long([*path, "label"], BUTTON_LABEL_LIMIT)


def check_allowed_mentions(value: Any, errors: FormErrors, prefix: Path = ()) -> None:
    base = [*prefix, "allowed_mentions"]
    if value is None:
        return
    if not isinstance(value, dict):
        errors.add(base, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        return
    parse = value.get("parse") or []
    for i, item in enumerate(parse):
        if item not in ("roles", "users", "everyone"):
            errors.add(
                [*base, "parse", i],
                "ENUM_TYPE_COERCE",
                f'Value "{item}" is not a valid enum value.',
            )
    for kind in ("users", "roles"):
        if kind in parse and value.get(kind):
            errors.add(
                base,
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
            )


def check_message(
    body: JSON, errors: FormErrors, *, prefix: Path = (), check_nonce: bool = True
) -> None:
    """Field limits of a message create/edit body (content, embeds, components, nonce)."""
    content = body.get("content")
    if content is not None:
        if not isinstance(content, str):
            errors.add([*prefix, "content"], "BASE_TYPE_STRING", "Must be a string.")
        elif len(content) > CONTENT_LIMIT:
            errors.too_long([*prefix, "content"], CONTENT_LIMIT)
    if body.get("embeds") is not None:
        check_embeds(body["embeds"], errors, prefix)
    if body.get("components") is not None:
        check_components(body["components"], int(body.get("flags") or 0), errors, prefix)
    check_allowed_mentions(body.get("allowed_mentions"), errors, prefix)
    nonce = body.get("nonce")
    if check_nonce and isinstance(nonce, str) and len(nonce) > NONCE_LIMIT:
        errors.too_long([*prefix, "nonce"], NONCE_LIMIT)


def is_empty_message(body: JSON, attachments: int) -> bool:
    return not (
        body.get("content")
        or body.get("embeds")
        or body.get("components")
        or body.get("sticker_ids")
        or body.get("poll")
        or attachments
    )


def check_choices(choices: Any, errors: FormErrors) -> None:
    base = ["data", "choices"]
    if not isinstance(choices, list):
        errors.add(base, "BASE_TYPE_LIST", "Must be an array.")
        return
    if len(choices) > AUTOCOMPLETE_CHOICES_LIMIT:
        errors.too_long(base, AUTOCOMPLETE_CHOICES_LIMIT)
    for i, choice in enumerate(choices):
        name = choice.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= CHOICE_NAME_LIMIT:
            errors.add(
                [*base, i, "name"],
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between 1 and {CHOICE_NAME_LIMIT} in length.",
            )
        value = choice.get("value")
        if isinstance(value, str) and len(value) > CHOICE_VALUE_LIMIT:
            errors.too_long([*base, i, "value"], CHOICE_VALUE_LIMIT)


MAX_COMMANDS = 100


def check_command(command: Any, errors: FormErrors, prefix: Path = ()) -> None:
    """The parts of Discord's command schema that a bot can realistically get wrong."""
    if not isinstance(command, dict):
        errors.add(prefix, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        return
    name = command.get("name")
    kind = command.get("type", 1)
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        errors.add([*prefix, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
    elif kind == 1 and (name != name.lower() or " " in name):
        errors.add([*prefix, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    if kind == 1:
        description = command.get("description")
        if not isinstance(description, str) or not 1 <= len(description) <= 100:
            errors.add(
                [*prefix, "description"],
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
    options = command.get("options") or []
    if len(options) > 25:
        errors.too_long([*prefix, "options"], 25)
    for i, option in enumerate(options):
        check_command_option(option, errors, [*prefix, "options", i])


def check_command_option(option: JSON, errors: FormErrors, path: Path) -> None:
    name = option.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        errors.add([*path, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
    description = option.get("description")
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        errors.add(
            [*path, "description"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )
    choices = option.get("choices") or []
    if len(choices) > 25:
        errors.too_long([*path, "choices"], 25)
    if choices and option.get("autocomplete"):
        errors.add(
            [*path, "autocomplete"],
            "AUTOCOMPLETE_CHOICES_MUTUALLY_EXCLUSIVE",
            "Autocomplete cannot be set for options with choices.",
        )
    for i, sub in enumerate(option.get("options") or []):
        check_command_option(sub, errors, [*path, "options", i])
