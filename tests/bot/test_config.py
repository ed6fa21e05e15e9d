"""Settings: environment over env file, clear errors, secrets kept out of repr."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import time
from pathlib import Path

import pytest

from bot.cli_parser import build_parser
from bot.config import ConfigError, Settings, load_settings, setting_names


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


def test_bad_env_file_line_is_logged_and_the_rest_applies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A line that is not KEY=value is logged with its line number; the other lines still apply."""
    env_file = tmp_path / "bad.env"
    env_file.write_text("PAPERBELL_ARXIV_DELAY=5\nthis is not a setting\n")
    with caplog.at_level(logging.WARNING):
        settings = load_settings({}, env_file=env_file)
    assert settings.arxiv_delay == 5.0
    assert any("line 2" in record.getMessage() for record in caplog.records)


def test_missing_env_file_is_a_config_error(tmp_path: Path) -> None:
    """An env file that does not exist is a clear ConfigError, not an OSError."""
    with pytest.raises(ConfigError, match="cannot read env file"):
        load_settings({}, env_file=tmp_path / "nope.env")


def test_token_not_in_repr() -> None:
    """The Discord token never appears in the settings' repr, str or dumps (so never in a log)."""
    settings = load_settings({"DISCORD_TOKEN": "MTIz.secret-token-value"})
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "secret-token-value" not in shown
    assert "secret-token-value" not in str(settings.model_dump())
    assert settings.discord_token == "MTIz.secret-token-value"


def test_blank_token_is_unset(tmp_path: Path) -> None:
    """`DISCORD_TOKEN=` (as in .env.example) leaves the token unset rather than empty."""
    env_file = tmp_path / "x.env"
    env_file.write_text("DISCORD_TOKEN=\n")
    assert load_settings({}, env_file=env_file).discord_token is None
    assert load_settings({"DISCORD_TOKEN": "  "}).discord_token is None


def test_settings_built_in_code_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings(...) takes only its arguments; load_settings() is what reads os.environ."""
    monkeypatch.setenv("PAPERBELL_ARXIV_DELAY", "9")
    monkeypatch.delenv("PAPERBELL_ENV_FILE", raising=False)
    assert Settings().arxiv_delay == 3.0
    assert load_settings().arxiv_delay == 9.0


def test_typed_values_from_code_skip_the_operator_minimums() -> None:
    """Code may compress the schedule below an operator's minimum; types are still checked."""
    assert Settings(poll_retry_minutes=0.002).poll_retry_minutes == 0.002
    with pytest.raises(ConfigError, match="PAPERBELL_POLL_RETRY_MINUTES must be a finite"):
        load_settings({"PAPERBELL_POLL_RETRY_MINUTES": "0.002"})
    with pytest.raises(ValueError):
        Settings(max_keyword_length="many")


@pytest.mark.parametrize(
    ("where", "name", "suggestion"),
    [
        ("environment", "PAPERBELL_ARXIV_DELEY", "PAPERBELL_ARXIV_DELAY"),
        ("environment", "PAPERBELL_HEALTHPORT", "PAPERBELL_HEALTH_PORT"),
        ("environment", "PAPERBELL_DISCORD_TOKEN", "DISCORD_TOKEN"),
        ("file", "PAPERBELL_DATABSE", "PAPERBELL_DATABASE"),
        ("file", "PAPERBELL_POLL_INTERVAL", "PAPERBELL_POLL_INTERVAL_MINUTES"),
    ],
)
def test_misspelled_variable_names_the_closest_setting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str, name: str, suggestion: str
) -> None:
    """An unknown PAPERBELL_* name close to a real one is warned about, naming the real one."""
    env_file = tmp_path / "paperbell.env"
    env_file.write_text(f"{name}=1\n" if where == "file" else "")
    environ = {name: "1"} if where == "environment" else {}
    with caplog.at_level(logging.WARNING, logger="bot.config"):
        load_settings(environ, env_file=env_file)
    messages = [r.getMessage() for r in caplog.records if r.name == "bot.config"]
    assert len(messages) == 1
    assert name in messages[0] and f"did you mean {suggestion}?" in messages[0]
    assert (str(env_file) if where == "file" else "environment") in messages[0]


def test_real_and_unrelated_variables_are_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Real settings, other PAPERBELL_* names that resemble none (the test suite's), and other
    programs' variables pass silently."""
    environ = {
        "PAPERBELL_ARXIV_DELAY": "1",
        "paperbell_log_level": "debug",
        "PAPERBELL_TEST_POSTGRES_URL": "postgresql://x@y/z",
        "PAPERBELL_BENCH_POSTGRES_URL": "postgresql://x@y/z",
        "PATH": "/usr/bin",
    }
    with caplog.at_level(logging.WARNING, logger="bot.config"):
        settings = load_settings(environ)
    assert [r for r in caplog.records if r.name == "bot.config"] == []
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    "argv",
    [
        ["--env-file", "x.env", "db", "stats"],
        ["db", "stats", "--env-file", "x.env"],
        ["db", "--env-file", "x.env", "stats"],
        ["poll", "--env-file", "x.env", "--dry-run"],
        ["search", "dark matter", "--env-file=x.env"],
    ],
)
def test_env_file_option_before_or_after_the_subcommand(argv: list[str]) -> None:
    """`--env-file` is accepted before the subcommand and anywhere after it."""
    assert build_parser().parse_args(argv).env_file == "x.env"
    assert build_parser().parse_args(["db", "stats"]).env_file is None


async def _run_cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERBELL_", "DISCORD_"))}
    environ["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_reads_env_file_given_after_the_subcommand(tmp_path: Path) -> None:
    """`paperbell db stats --env-file F` uses F's database and warns about F's misspelt name."""
    database = tmp_path / "from-file.db"
    env_file = tmp_path / "paperbell.env"
    env_file.write_text(f"PAPERBELL_DATABASE={database}\nPAPERBELL_LOG_LEVLE=DEBUG\n")
    code, _, err = await _run_cli(tmp_path, "db", "migrate", "--env-file", str(env_file))
    assert code == 0, err  # db stats only reads: it never creates the database
    for args in (
        ("db", "stats", "--env-file", str(env_file)),
        ("--env-file", str(env_file), "db", "stats"),
    ):
        code, out, err = await _run_cli(tmp_path, *args)
        assert code == 0, err
        assert f"database       {database}" in out
        assert "PAPERBELL_LOG_LEVLE" in err and "did you mean PAPERBELL_LOG_LEVEL?" in err
    assert database.exists()


async def test_cli_bad_value_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    """A malformed value in the env file ends the command with exit code 2 and one line."""
    env_file = tmp_path / "paperbell.env"
    env_file.write_text("DISCORD_TOKEN=MTIz.secret-token-value\nPAPERBELL_HEALTH_PORT=http\n")
    code, out, err = await _run_cli(tmp_path, "db", "stats", "--env-file", str(env_file))
    assert code == 2
    assert err == "paperbell: PAPERBELL_HEALTH_PORT must be a whole number, got 'http'\n"
    assert "secret" not in out + err


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
