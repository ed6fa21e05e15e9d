"""REST plumbing shared by the emulator's routes: error answers, request context, route table."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .state import JSON, Attachment
from .validation import FormErrors

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer: status, JSON (or text) body and extra headers."""

    def __init__(
        self,
        status: int,
        body: JSON | str,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.content_type = content_type


def api_error(status: int, code: int, message: str) -> ApiError:
    """A Discord JSON error body: `{"message": ..., "code": ...}`."""
    return ApiError(status, {"message": message, "code": code})


def unknown(kind: str, code: int) -> ApiError:
    return api_error(404, code, f"Unknown {kind}")


def form_error(errors: FormErrors) -> ApiError:
    return ApiError(400, errors.body())


def parse_int(value: str) -> int:
    """A snowflake from a path or query; Discord answers 400 Invalid Form Body otherwise."""
    try:
        return int(value)
    except ValueError:
        raise api_error(400, 50035, "Invalid Form Body") from None


@dataclass
class Ctx:
    """One REST request as a handler sees it: path parameters, query, JSON body, files."""

    params: dict[str, str]
    query: Mapping[str, str]
    body: Any
    files: list[Attachment]


Handler = Callable[[Ctx], Awaitable[tuple[int, Any]]]


@dataclass
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool
    bucket: str | None
    major: str | None


class RouteTable:
    """The REST routes in match order; `/users/@me` must come before `/users/{user_id}`."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self,
        method: str,
        template: str,
        handler: Handler,
        bucket: str | None,
        major: str | None = None,
        *,
        auth: bool = True,
    ) -> None:
        """`bucket` names the rate-limit bucket (None: no limit), `major` its path parameter."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        pattern = re.compile(f"^{regex}$")
        self.routes.append(Route(method, template, pattern, handler, auth, bucket, major))
