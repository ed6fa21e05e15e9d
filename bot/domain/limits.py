"""Input limits shared by the slash commands, the CLI and the services, declared once."""

from __future__ import annotations

# Longest search text, author name, subscription value or query expression accepted
# (slash option `max_length` and the services' own check).
MAX_QUERY_LENGTH = 300
