"""Settings: environment over env file, clear errors, secrets kept out of repr."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings, read_env_file, setting_names


def test_defaults_without_environment() -> None:
    """With nothing set, the documented defaults apply."""
    settings = load_settings({})
    assert settings.arxiv_rss_url == "https://rss.arxiv.org/rss/"
    assert settings.arxiv_api_url == "https://export.arxiv.org/api/query"
    assert settings.arxiv_delay == 3.0
    assert settings.database.endswith("paperbell/paperbell.db")
    assert settings.discord_token is None


def test_environment_overrides_env_file(tmp_path: Path) -> None:
    """A value in the process environment wins over the same key in the env file."""
    env_file = tmp_path / "paperbell.env"
    env_file.write_text(
        "# comment\nexport PAPERBELL_ARXIV_DELAY=5\nPAPERBELL_DATABASE='/tmp/x.db'\n"
        'DISCORD_TOKEN="abc.def.ghi" \nPAPERBELL_DEV_GUILD=123 # inline comment\n'
    )
    settings = load_settings({"PAPERBELL_ARXIV_DELAY": "0"}, env_file=env_file)
    assert settings.arxiv_delay == 0.0
    assert settings.database == "/tmp/x.db"
    assert settings.discord_token == "abc.def.ghi"
    assert settings.dev_guild == 123


def test_env_file_named_by_variable(tmp_path: Path) -> None:
    """PAPERBELL_ENV_FILE selects the env file when no explicit file is given."""
    env_file = tmp_path / "x.env"
    env_file.write_text("PAPERBELL_ARXIV_DELAY=7\n")
    assert load_settings({"PAPERBELL_ENV_FILE": str(env_file)}).arxiv_delay == 7.0


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("PAPERBELL_ARXIV_DELAY", "soon", "must be a number"),
        ("PAPERBELL_ARXIV_DELAY", "-1", ">= 0"),
        ("PAPERBELL_ARXIV_DELAY", "nan", "finite"),
        ("PAPERBELL_ARXIV_RSS_URL", "ftp://x", "http/https URL"),
        ("PAPERBELL_DISCORD_GATEWAY_URL", "http://x", "ws/wss URL"),
        ("PAPERBELL_DEV_GUILD", "abc", "whole number"),
        ("PAPERBELL_DATABASE", "mysql://x", "postgresql://"),
        ("PAPERBELL_HEALTH_PORT", "70000", "<= 65535"),
        ("PAPERBELL_LOG_FORMAT", "xml", "one of text, json"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, fragment: str) -> None:
    """A malformed value raises ConfigError naming the variable and what was expected."""
    with pytest.raises(ConfigError) as info:
        load_settings({name: value})
    assert name in str(info.value)
    assert fragment in str(info.value)


def test_bad_env_file_line(tmp_path: Path) -> None:
    """A line that is not KEY=value is reported with file and line number."""
    env_file = tmp_path / "bad.env"
    env_file.write_text("A=1\nthis is not a setting\n")
    with pytest.raises(ConfigError, match=r"bad\.env:2"):
        read_env_file(env_file)


def test_missing_env_file_is_a_config_error(tmp_path: Path) -> None:
    """An env file that does not exist is a clear ConfigError, not an OSError."""
    with pytest.raises(ConfigError, match="cannot read env file"):
        load_settings({}, env_file=tmp_path / "nope.env")


def test_token_not_in_repr() -> None:
    """The Discord token never appears in the settings' repr (so never in a log line)."""
    settings = load_settings({"DISCORD_TOKEN": "MTIz.secret-token-value"})
    assert "secret-token-value" not in repr(settings)
    assert settings.discord_token == "MTIz.secret-token-value"


def test_postgres_password_hidden_for_display() -> None:
    """The database URL shown in logs and status drops the password."""
    settings = Settings(database="postgresql://bot:hunter2@db.example:5432/paperbell")
    assert settings.is_postgres
    assert "hunter2" not in settings.database_for_display()
    assert "bot@db.example:5432" in settings.database_for_display()


def test_every_setting_is_in_env_example_and_readme() -> None:
    """Each variable paperbell reads is documented in the README and deploy/.env.example."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    example = (root / "deploy" / ".env.example").read_text()
    for name in setting_names():
        assert name in readme, f"{name} missing from README"
        assert name in example, f"{name} missing from deploy/.env.example"


def test_rebuild_window_settings() -> None:
    """The rebuild window reads HH:MM (New York time) and minutes up to 12 hours; 0 is off."""
    settings = load_settings(
        {
            "PAPERBELL_REBUILD_WINDOW_START": "0:05",
            "PAPERBELL_REBUILD_WINDOW_MINUTES": "0",
            "PAPERBELL_REBUILD_CHECK_SECONDS": "12.5",
        }
    )
    assert settings.rebuild_window_start == time(0, 5)
    assert settings.rebuild_window_minutes == 0.0
    assert settings.rebuild_check_seconds == 12.5
    assert load_settings({}).rebuild_window_start == time(23, 58)
    for name, value in [
        ("PAPERBELL_REBUILD_WINDOW_START", "24:00"),
        ("PAPERBELL_REBUILD_WINDOW_START", "23.58"),
        ("PAPERBELL_REBUILD_WINDOW_START", "11:58 pm"),
        ("PAPERBELL_REBUILD_WINDOW_MINUTES", "721"),
        ("PAPERBELL_REBUILD_WINDOW_MINUTES", "-1"),
        ("PAPERBELL_REBUILD_CHECK_SECONDS", "0"),
    ]:
        with pytest.raises(ConfigError, match=name):
            load_settings({name: value})
