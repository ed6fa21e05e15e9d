"""Logging: one line per event, key=value or JSON, and registered secrets never printed."""

from __future__ import annotations

import io
import json
import logging

from bot.logs import JsonFormatter, KeyValueFormatter, SecretFilter


def emit(
    formatter: logging.Formatter, message: str, *args: object, secrets: frozenset[str] = frozenset()
) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    secret_filter = SecretFilter()
    secret_filter.secrets.update(secrets)
    handler.addFilter(secret_filter)
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError("boom with " + "".join(secrets))
        except RuntimeError:
            logger.error(message, *args, exc_info=True)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_key_value_is_one_line_per_event() -> None:
    """Messages with spaces, quotes and newlines stay on one quoted line, traceback included."""
    out = emit(
        KeyValueFormatter(), "poll failed url=%s error=%s", "https://x/y", 'bad "xml"\nline2'
    )
    assert out.count("\n") == 1
    assert out.startswith("ts=") and " level=error " in out and " logger=test.logs." in out
    assert '\\"xml\\"\\nline2' in out
    assert "exc=" in out and "RuntimeError" in out


def test_json_format_parses() -> None:
    """PAPERBELL_LOG_FORMAT=json writes one parseable object per line."""
    out = emit(JsonFormatter(), "delivered count=%d", 3)
    record = json.loads(out)
    assert record["level"] == "error" and record["msg"] == "delivered count=3"
    assert record["ts"].endswith("+00:00")


def test_registered_secrets_are_masked_in_messages_and_tracebacks() -> None:
    """A token that reaches a log call (message or exception) is printed as [redacted]."""
    token = "MTIzNDU2.secret-token-xyz"
    out = emit(KeyValueFormatter(), "connecting with %s", token, secrets={token})
    assert token not in out
    assert out.count("[redacted]") >= 2
