"""Per-route rate-limit buckets with Discord's headers and 429 body.

Each bucket is a fixed window of `limit` requests per `per` seconds, keyed by
the route's bucket name and its major parameter (channel id, webhook token).
Every answer carries `X-RateLimit-*` headers so discord.py's own bucket logic
runs exactly as it does against Discord; going over gets a 429 with
`retry_after`, `Retry-After` and the `Via` header discord.py insists on before
it retries.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BucketConfig:
    """`limit` requests every `per` seconds."""

    limit: int
    per: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.per <= 0:
            raise ValueError(f"a bucket needs limit >= 1 and per > 0, got {self}")


@dataclass
class _Window:
    started: float
    count: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    headers: dict[str, str]
    retry_after: float
    is_global: bool = False


class RateLimiter:
    def __init__(self, global_per_second: int | None = None) -> None:
        self._windows: dict[tuple[str, str], _Window] = {}
        self._global_per_second = global_per_second
        self._global = _Window(started=0.0, count=0)
        self._exhaust_next = False

    def reset(self) -> None:
        self._windows.clear()
        self._global = _Window(started=0.0, count=0)
        self._exhaust_next = False

    def exhaust_global(self) -> None:
        """The next request finds the second's global requests spent and gets a global 429,
        however long it takes to come (a busy machine may take more than a second)."""
        self._exhaust_next = self._global_per_second is not None

    def consume(self, bucket: str, major: str, config: BucketConfig) -> Decision:
        now = time.monotonic()
        if self._global_per_second is not None:
            if self._exhaust_next:
                self._exhaust_next = False
                self._global = _Window(started=now, count=self._global_per_second)
            elif now - self._global.started >= 1.0:
                self._global = _Window(started=now, count=0)
            if self._global.count >= self._global_per_second:
                retry = max(0.0, self._global.started + 1.0 - now)
                headers = {
                    "X-RateLimit-Global": "true",
                    "X-RateLimit-Scope": "global",
                    "Retry-After": str(max(1, math.ceil(retry))),
                }
                return Decision(False, headers, retry, is_global=True)
            self._global.count += 1

        key = (bucket, major)
        window = self._windows.get(key)
        if window is None or now - window.started >= config.per:
            window = self._windows[key] = _Window(started=now, count=0)
        reset_after = max(0.0, window.started + config.per - now)
        headers = {
            "X-RateLimit-Limit": str(config.limit),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash(bucket),
        }
        if window.count >= config.limit:
            headers["X-RateLimit-Remaining"] = "0"
            headers["X-RateLimit-Scope"] = "user"
            headers["Retry-After"] = str(max(1, math.ceil(reset_after)))
            return Decision(False, headers, reset_after)
        window.count += 1
        headers["X-RateLimit-Remaining"] = str(config.limit - window.count)
        return Decision(True, headers, 0.0)


def bucket_hash(bucket: str) -> str:
    """An opaque, stable bucket id like the ones Discord sends."""
    return hashlib.sha1(bucket.encode()).hexdigest()[:32]
