"""Settings, read once from the environment and an optional env file.

Each setting is one field of `Settings`; its variable is `PAPERBELL_` plus the
field name in capitals (the token alone is `DISCORD_TOKEN`, as Discord's docs
call it). pydantic-settings maps variables to fields and python-dotenv (through
it) reads the env file. The process environment wins over the file, so an
operator can override one value without editing the file.

Secrets (the Discord token) only ever come from here; the token is kept as a
`SecretStr`, so neither repr nor a dump of the settings can put it in a log line.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Callable, Mapping
from datetime import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bot.arxiv.endpoints import (
    DEFAULT_API_URL,
    DEFAULT_OAI_URL,
    DEFAULT_RSS_URL,
)

log = logging.getLogger(__name__)

DEFAULT_HEALTH_HOST = "127.0.0.1"

PREFIX = "PAPERBELL_"
ENV_FILE_VARIABLE = "PAPERBELL_ENV_FILE"
TOKEN_VARIABLE = "DISCORD_TOKEN"
# How alike (difflib ratio of the part after the prefix) an unknown PAPERBELL_* name must be
# to a real one to count as a misspelling; PAPERBELL_TEST_POSTGRES_URL (0.44) must not.
_MISSPELLING_CUTOFF = 0.6


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable and what is expected."""


def default_database_path() -> Path:
    """`$XDG_DATA_HOME/paperbell/paperbell.db`, falling back to `~/.local/share`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "paperbell" / "paperbell.db"


# ---- checks on text from the environment -------------------------------------------------
# Each raises ValueError with what is expected; load_settings() puts the variable name in
# front. They run on text only: code that builds Settings directly (tests, bench) passes typed
# values and may go below an operator's minimum, e.g. a schedule compressed for a test.


def _from_text(check: Callable[[str], object]) -> BeforeValidator:
    def validate(value: object) -> object:
        return check(value) if isinstance(value, str) else value

    return BeforeValidator(validate)


def _check_number(raw: str, minimum: float = 0.0) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"must be a number, got {raw[:40]!r}") from None
    if not value >= minimum or value == float("inf"):  # `not >=` also catches NaN
        raise ValueError(f"must be a finite number >= {minimum:g}, got {raw[:40]!r}")
    return value


def _number(minimum: float = 0.0) -> BeforeValidator:
    return _from_text(lambda raw: _check_number(raw, minimum))


def _whole(minimum: int = 0, maximum: int | None = None) -> BeforeValidator:
    def check(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"must be a whole number, got {raw[:40]!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and <= {maximum}" if maximum is not None else ""
            raise ValueError(f"must be >= {minimum}{upper}, got {value}")
        return value

    return _from_text(check)


def _url(*schemes: str) -> BeforeValidator:
    def check(raw: str) -> str:
        parsed = urlparse(raw)
        if parsed.scheme not in schemes or not parsed.netloc:
            raise ValueError(f"must be a {'/'.join(schemes)} URL, got {raw[:80]!r}")
        return raw

    return _from_text(check)


def _choice(*choices: str, fold: Callable[[str], str]) -> BeforeValidator:
    def check(raw: str) -> str:
        value = fold(raw)
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value[:40]!r}")
        return value

    return _from_text(check)


def _clock(raw: str) -> time:
    match = re.fullmatch(r"([01]?[0-9]|2[0-3]):([0-5][0-9])", raw.strip())
    if match is None:
        raise ValueError(f"must be a time of day HH:MM, got {raw[:40]!r}")
    return time(int(match.group(1)), int(match.group(2)))


def _window_minutes(raw: str) -> float:
    value = _check_number(raw)
    if value > 12 * 60:  # one window a day; longer ones would overlap the next
        raise ValueError(f"must be at most 720 (12 hours), got {raw[:40]!r}")
    return value


def _database(raw: str) -> str:
    raw = raw.strip()
    if "://" in raw and not raw.startswith(("postgresql://", "postgres://")):
        raise ValueError("must be a SQLite file path or a postgresql:// URL")
    return raw if "://" in raw else str(Path(raw).expanduser())


def _optional_text(raw: str) -> str | None:
    return raw.strip() or None


_HTTP = _url("http", "https")
_SNOWFLAKE = _whole(1, 2**63 - 1)


class Settings(BaseSettings):
    """Every knob paperbell has. See `deploy/.env.example` and the README's configuration table.

    `Settings(...)` takes only what it is given (plus defaults); `load_settings()` is the one
    place that reads the environment and the env file.
    """

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="forbid")

    database: Annotated[str, _from_text(_database)] = Field(
        default_factory=lambda: str(default_database_path())
    )
    arxiv_rss_url: Annotated[str, _HTTP] = DEFAULT_RSS_URL
    arxiv_api_url: Annotated[str, _HTTP] = DEFAULT_API_URL
    arxiv_oai_url: Annotated[str, _HTTP] = DEFAULT_OAI_URL
    arxiv_delay: Annotated[float, _number()] = 3.0
    arxiv_timeout: Annotated[float, _number(0.1)] = 30.0
    arxiv_max_retries: Annotated[int, _whole(0, 10)] = 4
    # Added to the User-Agent so arXiv can reach the operator.
    contact: Annotated[str | None, _from_text(_optional_text)] = None
    # Read through the `discord_token` property; the field stays masked.
    discord_token_secret: Annotated[SecretStr | None, _from_text(_optional_text)] = Field(
        default=None, validation_alias=AliasChoices(TOKEN_VARIABLE, "discord_token")
    )
    dev_guild: Annotated[int | None, _SNOWFLAKE] = None
    discord_api_url: Annotated[str | None, _HTTP] = None
    discord_gateway_url: Annotated[str | None, _url("ws", "wss")] = None
    poll_retry_minutes: Annotated[float, _number(0.01)] = 2.0
    poll_interval_minutes: Annotated[float, _number(0.01)] = 60.0
    poll_give_up_hours: Annotated[float, _number(0.0)] = 6.0
    # Inside this window (America/New_York) the cycle checks each listing URL about every
    # few seconds (conditional GETs, arxiv_delay apart); 0 minutes turns it off.
    rebuild_window_start: Annotated[time, _from_text(_clock)] = time(23, 58)
    rebuild_window_minutes: Annotated[float, _from_text(_window_minutes)] = 32.0
    rebuild_check_seconds: Annotated[float, _number(0.01)] = 30.0
    delivery_interval_seconds: Annotated[float, _number(0.01)] = 10.0
    max_subscriptions_per_guild: Annotated[int, _whole(1)] = 200
    max_subscriptions_per_user: Annotated[int, _whole(1)] = 50
    max_keyword_length: Annotated[int, _whole(3, 500)] = 100
    max_keywords_per_destination: Annotated[int, _whole(1)] = 25
    health_host: Annotated[str, _from_text(lambda v: v.strip() or DEFAULT_HEALTH_HOST)] = (
        DEFAULT_HEALTH_HOST
    )
    health_port: Annotated[int | None, _whole(1, 65535)] = None
    log_level: Annotated[str, _choice("DEBUG", "INFO", "WARNING", "ERROR", fold=str.upper)] = "INFO"
    log_format: Annotated[str, _choice("text", "json", fold=str.lower)] = "text"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the constructor's arguments: a developer's shell must not change the
        # Settings(...) a test builds. load_settings() runs the environment sources itself.
        return (init_settings,)

    @property
    def discord_token(self) -> str | None:
        """The bot token in clear, for the code that logs in to Discord."""
        secret = self.discord_token_secret
        return secret.get_secret_value() if secret is not None else None

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


def _variables() -> dict[str, str]:
    """Field name -> the environment variable that sets it."""
    names = {}
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names[name] = str(alias.choices[0])
        else:
            names[name] = PREFIX + name.upper()
    return names


def setting_names() -> list[str]:
    """Every environment variable paperbell reads (for the docs test and `.env.example`)."""
    return [ENV_FILE_VARIABLE, *_variables().values()]


class _Variables(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of `os.environ`."""

    def __init__(self, variables: Mapping[str, str | None]) -> None:
        self._given = variables
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Names are matched case-insensitively (pydantic-settings' default), so fold them
        # as its own loader does.
        return {name.lower(): value for name, value in self._given.items()}


def _read_env_file(path: Path) -> dict[str, str | None]:
    """The file's KEY=value pairs (python-dotenv's syntax; a line it cannot parse is logged)."""
    try:
        path.open("rb").close()
    except OSError as exc:
        raise ConfigError(f"cannot read env file {path}: {exc.strerror or exc}") from None
    # Case kept, so a warning names the variable as the file spells it.
    return dict(DotEnvSettingsSource(Settings, env_file=path, case_sensitive=True).env_vars)


def _warn_misspelled(names: Mapping[str, str]) -> None:
    """Log a warning for each `PAPERBELL_*` name that looks like a misspelt setting.

    `names` maps each variable name seen to where it was seen. Unknown names that resemble
    no setting (say PAPERBELL_TEST_POSTGRES_URL) belong to something else and pass.
    """
    known = {variable.upper() for variable in setting_names()}
    # Compare what follows the prefix: the shared prefix would make every name look alike.
    stems = {v.upper().removeprefix(PREFIX): v for v in setting_names()}
    for name, origin in sorted(names.items()):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in known:
            continue
        close = difflib.get_close_matches(
            upper.removeprefix(PREFIX), stems, n=1, cutoff=_MISSPELLING_CUTOFF
        )
        if close:
            log.warning(
                "%s (%s) is not a paperbell setting; did you mean %s?",
                name,
                origin,
                stems[close[0]],
            )


def _config_error(exc: ValidationError) -> ConfigError:
    """The first problem as one line that names the variable (never its value's secret)."""
    error = exc.errors()[0]
    by_key = _variables()
    by_key.update({variable: variable for variable in by_key.values()})
    key = str(error["loc"][0]) if error["loc"] else ""
    variable = by_key.get(key, key)
    cause = (error.get("ctx") or {}).get("error")
    message = str(cause) if isinstance(cause, ValueError) else error["msg"]
    return ConfigError(f"{variable} {message}")


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = None
) -> Settings:
    """Build Settings from `environ` (default: os.environ) over an optional env file.

    The file is `env_file`, else the one `PAPERBELL_ENV_FILE` names. Blank values count as
    unset. A malformed value raises ConfigError naming the variable.
    """
    environ = os.environ if environ is None else environ
    file_name = env_file or environ.get(ENV_FILE_VARIABLE)
    from_file = _read_env_file(Path(file_name).expanduser()) if file_name else {}
    seen = {name: f"env file {file_name}" for name in from_file}
    seen.update({name: "environment" for name in environ})
    _warn_misspelled(seen)
    # Case-folded by the source, so the environment's spelling replaces the file's.
    merged = {name.lower(): value for name, value in from_file.items()}
    merged.update({name.lower(): value for name, value in environ.items()})
    values: dict[str, Any] = {
        key: value
        for key, value in _Variables(merged)().items()
        if not (isinstance(value, str) and not value.strip())
    }
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise _config_error(exc) from None
