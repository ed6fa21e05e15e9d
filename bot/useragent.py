"""The User-Agent paperbell sends to arXiv, shared by the CLI and the bot's runner."""

from __future__ import annotations

from bot.arxiv.client import DEFAULT_USER_AGENT
from bot.config import Settings


def user_agent(settings: Settings) -> str:
    """arXiv asks automated clients to say who runs them: add the operator's contact."""
    if settings.contact:
        return f"{DEFAULT_USER_AGENT} contact: {settings.contact}"
    return DEFAULT_USER_AGENT
