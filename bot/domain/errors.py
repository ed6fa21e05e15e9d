"""The `UserError` family: mistakes a user can fix, with a message safe to show them.

One tree error handler (and the CLI) turns these into a short reply or one
line on stderr; anything else is a bug and is logged with its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Base class: `str(error)` is shown to the user verbatim, so keep it short and safe."""


class InvalidInputError(UserError):
    """The input cannot be understood (too long, empty, wrong shape)."""


class NotFoundError(UserError):
    """The thing asked for does not exist (a paper id arXiv doesn't know, a subscription)."""


class QuotaExceededError(UserError):
    """A configured limit (subscriptions per server or user, keyword count) would be exceeded."""


class PermissionDeniedError(UserError):
    """The caller, or the bot itself, lacks a permission the action needs."""


class UpstreamError(UserError):
    """arXiv could not be reached or answered with an error; try again later."""
