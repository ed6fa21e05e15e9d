"""The errors the store raises; their messages are safe to print (no secrets)."""

from __future__ import annotations


class StorageError(Exception):
    """The database could not be opened or used; the message is safe to print."""


class StorageUnavailableError(StorageError):
    """The database server could not be reached (down, or not up yet): retry later."""
