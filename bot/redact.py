"""Credentials out of URLs before anything is logged or shown.

A proxy or mirror URL in the settings may carry `user:password@` or a token in
its query string, and error messages repeat the URL they failed on. Everything
that prints a URL or an error that may contain one (feed errors in the store
and in `/paperbell status`, log lines, the CLI) goes through `redact_urls`.
Both patterns are linear: bounded scheme and parameter-name lengths, and each
character is scanned by at most one user-info run.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://userinfo@ — greedy up to the last `@` before the host's end (a password may hold `@`).
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]{0,30}://)[^\s/?#@]*(?:@[^\s/?#@]*)*@")
_PARAMETER = re.compile(r"([?&;])([A-Za-z0-9_.\-]{1,64})=([^&;#\s]*)")
_SECRET_WORDS = (
    "token", "key", "secret", "password", "passwd", "pwd", "pass", "auth",
    "signature", "sig", "credential", "session", "code",
)  # fmt: skip


def _parameter(match: re.Match[str]) -> str:
    name = match.group(2)
    folded = name.casefold()
    if match.group(3) and any(word in folded for word in _SECRET_WORDS):
        return f"{match.group(1)}{name}={MASK}"
    return match.group(0)


def redact_urls(text: str) -> str:
    """`text` with every URL's `user:password@` and secret-looking query values masked.

    `https://bob:hunter2@proxy.example/rss/cs?token=abc&x=1` becomes
    `https://***@proxy.example/rss/cs?token=***&x=1`. Text without URLs is
    returned unchanged.
    """
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _PARAMETER.sub(_parameter, text)
