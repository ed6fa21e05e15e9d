"""Credentials never leave in a URL: the helper itself, the log filter, the store and the CLI."""

from __future__ import annotations

import io
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from bot.logs import KeyValueFormatter, SecretFilter
from bot.metrics import feed_label
from bot.redact import redact_urls
from tests.arxiv_server import ArxivServer, Scripted
from tests.bot.test_cli import env, paperbell

__all__ = ["env"]  # the CLI fixture, used by name below


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (
            "https://bob:hunter2@proxy.example:3128/rss/cs",
            "https://***@proxy.example:3128/rss/cs",
        ),
        ("GET http://u:p@ss@host/x failed", "GET http://***@host/x failed"),
        ("http://token@mirror.example/rss/", "http://***@mirror.example/rss/"),
        (
            "https://export.example/api?token=abc&search_query=cat:cs.LG&api_key=K#x",
            "https://export.example/api?token=***&search_query=cat:cs.LG&api_key=***#x",
        ),
        (
            "see https://a.example/x?sig=1;access_token=2 now",
            "see https://a.example/x?sig=***;access_token=*** now",
        ),
        ("postgresql://paperbell:pw@db:5432/p", "postgresql://***@db:5432/p"),
        ("https://rss.arxiv.org/rss/cs.AI+cs.LG", "https://rss.arxiv.org/rss/cs.AI+cs.LG"),
        ("a user@example.org wrote", "a user@example.org wrote"),
        ("no url, x=1", "no url, x=1"),
    ],
)
def test_redact_urls(raw: str, shown: str) -> None:
    """User info and secret-looking query values are masked; everything else is kept."""
    assert redact_urls(raw) == shown


@pytest.mark.parametrize(
    "hostile",
    [
        "a://" + "b" * 200_000,
        "a://b@" * 40_000,
        "x" * 200_000 + "://",
        "?" + "k" * 64 + "=" * 200_000,
        "http://" + "@" * 200_000,
    ],
)
def test_redact_urls_is_linear(hostile: str) -> None:
    """Long hostile inputs are cleaned in well under a second (no backtracking blow-up)."""
    started = time.process_time()
    redact_urls(hostile)
    assert time.process_time() - started < 1.0


def test_log_filter_masks_url_credentials_in_messages_and_tracebacks() -> None:
    """Every log line, traceback included, goes out without URL credentials."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(KeyValueFormatter())
    handler.addFilter(SecretFilter())
    logger = logging.getLogger("test.redact")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)  # whatever level the root logger was left at
    logger.addHandler(handler)
    try:
        try:
            raise ConnectionError("proxy http://bob:hunter2@proxy.example:3128 refused")
        except ConnectionError:
            logger.warning("GET %s failed", "https://x.example/rss?token=s3cr3t", exc_info=True)
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "hunter2" not in out and "s3cr3t" not in out
    assert "http://***@proxy.example:3128" in out and "token=***" in out


async def test_cli_poll_through_a_credentialed_url_leaks_nothing(
    env: dict[str, str], arxiv_server: ArxivServer, tmp_path: Path
) -> None:
    """A feed failure behind `user:password@` is printed, logged and stored without them."""
    arxiv_server.enqueue(Scripted(status=503, body=b"down"))
    base = arxiv_server.rss_url.replace("http://", "http://reader:hunter2@")
    env = {**env, "PAPERBELL_ARXIV_RSS_URL": base, "PAPERBELL_ARXIV_MAX_RETRIES": "0"}
    result = await paperbell(env, "poll", "--categories", "cs.LG")
    assert result.code == 1
    assert "hunter2" not in result.out + result.err and "reader" not in result.out + result.err
    assert "http://***@127.0.0.1" in result.out
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        (error,) = conn.execute("SELECT last_error FROM feed_state").fetchone()
    assert "503" in error and "hunter2" not in error and "***@" in error


def test_metrics_feed_labels_carry_no_credentials() -> None:
    """A credentialed feed URL is labelled by its categories alone on /metrics."""
    assert feed_label("http://reader:hunter2@proxy.example/rss/cs.AI+cs.LG?token=abc") == (
        "cs.AI+cs.LG"
    )
