"""`paperbell` command line: poll, import, look papers up, manage the database, run the bot.

The entry point only: it parses the arguments (`bot.cli_parser`), loads the settings,
runs the command (`bot.cli_commands`, or the bot itself for `run`) and turns every
failure into one line on stderr, never a traceback: exit code 2 for a mistake the
user can fix, 1 for an upstream failure or a busy database (`bot.cli_failures`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from bot import cli_commands
from bot.cli_failures import (
    EXIT_ERROR,
    EXIT_USAGE,
    KNOWN_FAILURES,
    explain_failure,
    quiet_broken_pipe,
)
from bot.cli_parser import build_parser
from bot.config import ConfigError, Settings, load_settings
from bot.logs import configure_logging

log = logging.getLogger(__name__)


async def _dispatch(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.command == "run":
        from bot.runner import run_bot

        return await run_bot(settings, shard_count=args.shard_count, shard_ids=args.shard_ids)
    return await cli_commands.COMMANDS[args.command](args, settings, out)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the `paperbell` console script; returns the process exit code.

    Every failure ends as one line on stderr: 2 for a mistake the user can fix, 1 for
    an upstream failure or a busy database (see EXIT_CODES), never a traceback.
    """
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(env_file=args.env_file)
    except ConfigError as exc:
        sys.stderr.write(f"paperbell: {exc}\n")
        return EXIT_USAGE
    # One-shot commands print their results and one line per failure; only the bot logs
    # routine events (PAPERBELL_LOG_LEVEL=DEBUG shows everything, tracebacks included).
    level = (
        settings.log_level if args.command == "run" or settings.log_level == "DEBUG" else "ERROR"
    )
    configure_logging(level, settings.log_format)
    try:
        code = asyncio.run(_dispatch(args, settings, out))
        out.flush()
    except BrokenPipeError:
        return quiet_broken_pipe()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        code, message = explain_failure(
            exc,
            database=settings.database_for_display(),
            busy_timeout=cli_commands.CLI_BUSY_TIMEOUT,
        )
        if code == EXIT_ERROR and not isinstance(exc, KNOWN_FAILURES):
            # A bug: one line for the user, the traceback in the log (always for the bot).
            severity = logging.ERROR if args.command == "run" else logging.DEBUG
            log.log(severity, "unexpected error", exc_info=True)
        sys.stderr.write(f"paperbell: {message}\n")
    return code
