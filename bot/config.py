"""Settings, read once from the environment and an optional env file.

Secrets (the Discord token) only ever come from here; `Settings` keeps the
token out of its repr so it cannot reach a log line by accident.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import time
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

DEFAULT_RSS_URL = "https://rss.arxiv.org/rss/"
DEFAULT_API_URL = "https://export.arxiv.org/api/query"
DEFAULT_AUTHOR_FEED_URL = "https://arxiv.org/a/"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable and what is expected."""


def default_database_path() -> Path:
    """`$XDG_DATA_HOME/paperbell/paperbell.db`, falling back to `~/.local/share`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "paperbell" / "paperbell.db"


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob paperbell has. See `.env.example` and the README's configuration table."""

    database: str = field(default_factory=lambda: str(default_database_path()))
    arxiv_rss_url: str = DEFAULT_RSS_URL
    arxiv_api_url: str = DEFAULT_API_URL
    arxiv_author_feed_url: str = DEFAULT_AUTHOR_FEED_URL
    arxiv_delay: float = 3.0
    arxiv_timeout: float = 30.0
    arxiv_max_retries: int = 4
    contact: str | None = None  # added to the User-Agent so arXiv can reach the operator
    discord_token: str | None = field(default=None, repr=False)
    dev_guild: int | None = None
    discord_api_url: str | None = None
    discord_gateway_url: str | None = None
    poll_retry_minutes: float = 2.0
    poll_interval_minutes: float = 60.0
    poll_give_up_hours: float = 6.0
    # Inside this window (America/New_York) the cycle checks each listing URL about every
    # few seconds (conditional GETs, arxiv_delay apart); 0 minutes turns it off.
    rebuild_window_start: time = time(23, 58)
    rebuild_window_minutes: float = 32.0
    rebuild_check_seconds: float = 30.0
    delivery_interval_seconds: float = 10.0
    max_subscriptions_per_guild: int = 200
    max_subscriptions_per_user: int = 50
    max_keyword_length: int = 100
    max_keywords_per_destination: int = 25
    health_host: str = "127.0.0.1"
    health_port: int | None = None
    log_level: str = "INFO"
    log_format: str = "text"

    @property
    def is_postgres(self) -> bool:
        return self.database.startswith(("postgresql://", "postgres://"))

    def database_for_display(self) -> str:
        """The database location with any password removed (for logs and status)."""
        if self.is_postgres:
            parsed = urlparse(self.database)
            netloc = parsed.hostname or ""
            if parsed.port:
                netloc += f":{parsed.port}"
            if parsed.username:
                netloc = f"{parsed.username}@{netloc}"
            return parsed._replace(netloc=netloc).geturl()
        return self.database


_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv-style file: KEY=value, optional quotes, `#` comments, `export` prefix."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read env file {path}: {exc.strerror or exc}") from exc
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(raw)
        if not match:
            raise ConfigError(f"{path}:{number}: expected KEY=value")
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def _parse_float(name: str, raw: str, *, minimum: float = 0.0) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw[:40]!r}") from None
    if not value >= minimum or value != value or value == float("inf"):
        raise ConfigError(f"{name} must be a finite number >= {minimum:g}, got {raw[:40]!r}")
    return value


def _parse_int(name: str, raw: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw[:40]!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ConfigError(f"{name} must be >= {minimum}{upper}, got {value}")
    return value


def _parse_url(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not parsed.netloc:
        raise ConfigError(f"{name} must be a {'/'.join(schemes)} URL, got {raw[:80]!r}")
    return raw


def _parse_clock(name: str, raw: str) -> time:
    match = re.fullmatch(r"([01]?[0-9]|2[0-3]):([0-5][0-9])", raw.strip())
    if match is None:
        raise ConfigError(f"{name} must be a time of day HH:MM, got {raw[:40]!r}")
    return time(int(match.group(1)), int(match.group(2)))


def _parse_window_minutes(name: str, raw: str) -> float:
    value = _parse_float(name, raw)
    if value > 12 * 60:  # one window a day; longer ones would overlap the next
        raise ConfigError(f"{name} must be at most 720 (12 hours), got {raw[:40]!r}")
    return value


def _snowflake(name: str, raw: str) -> int:
    return _parse_int(name, raw, minimum=1, maximum=2**63 - 1)


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# variable name -> (Settings field, converter)
_VARIABLES: dict[str, tuple[str, Callable[[str, str], object]]] = {
    "PAPERBELL_DATABASE": ("database", lambda n, v: _parse_database(n, v)),
    "PAPERBELL_ARXIV_RSS_URL": ("arxiv_rss_url", lambda n, v: _parse_url(n, v, ("http", "https"))),
    "PAPERBELL_ARXIV_API_URL": ("arxiv_api_url", lambda n, v: _parse_url(n, v, ("http", "https"))),
    "PAPERBELL_ARXIV_AUTHOR_FEED_URL": (
        "arxiv_author_feed_url",
        lambda n, v: _parse_url(n, v, ("http", "https")),
    ),
    "PAPERBELL_ARXIV_DELAY": ("arxiv_delay", lambda n, v: _parse_float(n, v)),
    "PAPERBELL_ARXIV_TIMEOUT": ("arxiv_timeout", lambda n, v: _parse_float(n, v, minimum=0.1)),
    "PAPERBELL_ARXIV_MAX_RETRIES": (
        "arxiv_max_retries",
        lambda n, v: _parse_int(n, v, minimum=0, maximum=10),
    ),
    "PAPERBELL_CONTACT": ("contact", lambda n, v: v.strip() or None),
    "DISCORD_TOKEN": ("discord_token", lambda n, v: v.strip() or None),
    "PAPERBELL_DEV_GUILD": ("dev_guild", _snowflake),
    "PAPERBELL_DISCORD_API_URL": (
        "discord_api_url",
        lambda n, v: _parse_url(n, v, ("http", "https")),
    ),
    "PAPERBELL_DISCORD_GATEWAY_URL": (
        "discord_gateway_url",
        lambda n, v: _parse_url(n, v, ("ws", "wss")),
    ),
    "PAPERBELL_POLL_RETRY_MINUTES": (
        "poll_retry_minutes",
        lambda n, v: _parse_float(n, v, minimum=0.01),
    ),
    "PAPERBELL_POLL_INTERVAL_MINUTES": (
        "poll_interval_minutes",
        lambda n, v: _parse_float(n, v, minimum=0.01),
    ),
    "PAPERBELL_POLL_GIVE_UP_HOURS": (
        "poll_give_up_hours",
        lambda n, v: _parse_float(n, v, minimum=0.0),
    ),
    "PAPERBELL_REBUILD_WINDOW_START": ("rebuild_window_start", _parse_clock),
    "PAPERBELL_REBUILD_WINDOW_MINUTES": ("rebuild_window_minutes", _parse_window_minutes),
    "PAPERBELL_REBUILD_CHECK_SECONDS": (
        "rebuild_check_seconds",
        lambda n, v: _parse_float(n, v, minimum=0.01),
    ),
    "PAPERBELL_DELIVERY_INTERVAL_SECONDS": (
        "delivery_interval_seconds",
        lambda n, v: _parse_float(n, v, minimum=0.01),
    ),
    "PAPERBELL_MAX_SUBSCRIPTIONS_PER_GUILD": (
        "max_subscriptions_per_guild",
        lambda n, v: _parse_int(n, v, minimum=1),
    ),
    "PAPERBELL_MAX_SUBSCRIPTIONS_PER_USER": (
        "max_subscriptions_per_user",
        lambda n, v: _parse_int(n, v, minimum=1),
    ),
    "PAPERBELL_MAX_KEYWORD_LENGTH": (
        "max_keyword_length",
        lambda n, v: _parse_int(n, v, minimum=3, maximum=500),
    ),
    "PAPERBELL_MAX_KEYWORDS_PER_DESTINATION": (
        "max_keywords_per_destination",
        lambda n, v: _parse_int(n, v, minimum=1),
    ),
    "PAPERBELL_HEALTH_HOST": ("health_host", lambda n, v: v.strip() or "127.0.0.1"),
    "PAPERBELL_HEALTH_PORT": (
        "health_port",
        lambda n, v: _parse_int(n, v, minimum=1, maximum=65535),
    ),
    "PAPERBELL_LOG_LEVEL": ("log_level", lambda n, v: _parse_choice(n, v.upper(), _LEVELS)),
    "PAPERBELL_LOG_FORMAT": (
        "log_format",
        lambda n, v: _parse_choice(n, v.lower(), ("text", "json")),
    ),
}


def _parse_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value[:40]!r}")
    return value


def _parse_database(name: str, raw: str) -> str:
    raw = raw.strip()
    if not raw:
        raise ConfigError(f"{name} is empty; give a SQLite file path or a postgresql:// URL")
    if "://" in raw and not raw.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"{name} must be a SQLite file path or a postgresql:// URL")
    if "://" not in raw:
        return str(Path(raw).expanduser())
    return raw


def setting_names() -> list[str]:
    """Every environment variable paperbell reads (for the docs test and `.env.example`)."""
    return ["PAPERBELL_ENV_FILE", *_VARIABLES]


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = None
) -> Settings:
    """Build Settings from `environ` (default: os.environ) over an optional env file.

    The process environment wins over the file, so an operator can override one
    value without editing the file.
    """
    environ = dict(os.environ if environ is None else environ)
    file_name = env_file or environ.get("PAPERBELL_ENV_FILE")
    merged: dict[str, str] = {}
    if file_name:
        merged.update(read_env_file(Path(file_name).expanduser()))
    merged.update(environ)
    values: dict[str, object] = {}
    for variable, (attribute, convert) in _VARIABLES.items():
        raw = merged.get(variable)
        if raw is None or (raw.strip() == "" and attribute != "discord_token"):
            continue
        values[attribute] = convert(variable, raw)
    known = {f.name for f in fields(Settings)}
    assert set(values) <= known
    return Settings(**values)  # type: ignore[arg-type]
