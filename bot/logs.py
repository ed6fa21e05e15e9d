"""Logging: one line per event, `key=value` by default or JSON with PAPERBELL_LOG_FORMAT=json.

A filter masks registered secrets (the Discord token) and the credentials in any
URL (`bot.redact`) wherever they would appear, as a last line of defence: no code
path is meant to log them in the first place.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from bot.redact import redact_urls

log = logging.getLogger(__name__)

_REDACTED = "[redacted]"


class SecretFilter(logging.Filter):
    """Masks registered secrets and URL credentials in a record's message and traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def _clean(self, text: str) -> str:
        text = redact_urls(text)
        for secret in self.secrets:
            text = text.replace(secret, _REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info or record.exc_text:
            # Another handler may have formatted (and cached) the traceback already.
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]
            record.exc_text = self._clean(text)
        return True


_secret_filter = SecretFilter()


def register_secret(value: str | None) -> None:
    """Never print `value` in a log line (it is masked if some library tries)."""
    if value and len(value) >= 8:
        _secret_filter.secrets.add(value)


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


def _fields(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, Any]:
    """The fields of one event: time (UTC), level, logger, message, traceback if any."""
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    if record.exc_info:
        fields["exc"] = record.exc_text or formatter.formatException(record.exc_info)
    return fields


class KeyValueFormatter(logging.Formatter):
    """`ts=... level=info logger=bot.poller msg="..."`, one physical line per event."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_quote(v)}" for k, v in _fields(self, record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line (PAPERBELL_LOG_FORMAT=json)."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(self, record), ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_paperbell", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    handler.addFilter(_secret_filter)
    handler._paperbell = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # discord.py's gateway chatter is useful only when debugging.
    logging.getLogger("discord").setLevel(max(logging.INFO, root.level))
    # APScheduler logs two INFO lines per job run (thousands a day at the delivery interval).
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
