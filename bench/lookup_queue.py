"""Look-ups against the alert poll: how long a poll waits behind queued /paper look-ups.

Issue 9 measured 40 `/paper` look-ups of unknown ids delaying an admin poll by
20 s (each costs 3 s of arXiv's budget in production). This runs the real
`PaperService` (real `ArxivClient`, shared `RequestLimiter`, look-up gate) on a
SQLite file against the local arXiv server: N users each look up an unknown
paper at once, then a poll starts. It prints, side by side, the poll's wait
for its first request with the poll at its own priority (production) and with
the poll queued like a look-up (FIFO, as before), plus how many look-ups the
bounded queue let through and how many it answered at once. The limiter's gap
is `--delay` (default 0.05 s); the production column scales the measured wait
by 3 s / delay.

    .venv/bin/python -m bench.lookup_queue [--lookups 40] [--delay 0.05] [--max-queue 20]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

import aiohttp

from bot.arxiv.client import DEFAULT_USER_AGENT, ArxivClient, FetchResult
from bot.arxiv.limiter import Priority, RequestLimiter
from bot.domain.errors import UserError
from bot.lookups import LookupGate
from bot.services import PaperService
from storage.db import Database
from tests.arxiv_server import ArxivServer

log = logging.getLogger(__name__)


class _FifoPollClient(ArxivClient):
    """The poll queued like any look-up: the limiter's order before priorities."""

    async def fetch_rss(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        return await self.get(url, etag=etag, last_modified=last_modified, priority=Priority.LOOKUP)


async def _trial(
    workdir: Path, *, lookups: int, delay: float, max_queue: int, fifo: bool
) -> tuple[float, int, int]:
    """(poll wait in s, look-ups sent to arXiv, look-ups answered at once)."""
    db = await Database.open(workdir / f"bench-{'fifo' if fifo else 'priority'}.db")
    try:
        async with ArxivServer() as arxiv, aiohttp.ClientSession() as session:
            cls = _FifoPollClient if fifo else ArxivClient
            client = cls(
                session,
                rss_url=arxiv.rss_url,
                api_url=arxiv.api_url,
                limiter=RequestLimiter(delay),
                user_agent=DEFAULT_USER_AGENT,
                timeout=10,
            )
            gate = LookupGate(cooldown=0, max_queue=max_queue)
            service = PaperService(db, client, lookup_gate=gate)
            tasks = [
                asyncio.create_task(service.get_paper(f"2402.{n:05d}", user_id=n))
                for n in range(1, lookups + 1)
            ]
            await arxiv.wait_for_requests(1)
            started = time.monotonic()
            poll = asyncio.create_task(service.poll(["cs.AI"]))
            while not any(r.path.startswith("/rss/") for r in arxiv.requests):
                await asyncio.sleep(0.001)
            waited = time.monotonic() - started
            await poll
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            sent = len(arxiv.api_requests())
            refused = sum(
                1 for o in outcomes if isinstance(o, UserError) and "waiting for arXiv" in str(o)
            )
            return waited, sent, refused
    finally:
        await db.close()


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for fifo in (True, False):
            waited, sent, refused = await _trial(
                Path(tmp),
                lookups=args.lookups,
                delay=args.delay,
                max_queue=args.max_queue,
                fifo=fifo,
            )
            rows.append(("FIFO (before)" if fifo else "poll first (now)", waited, sent, refused))
    scale = 3.0 / args.delay
    print(
        f"{args.lookups} /paper look-ups of unknown ids, then a poll; limiter gap {args.delay} s, "
        f"look-up queue bound {args.max_queue}"
    )
    print(f"{'order':<18} {'poll wait':>10} {'at 3 s gap':>11} {'to arXiv':>9} {'told busy':>10}")
    for name, waited, sent, refused in rows:
        print(f"{name:<18} {waited:>9.2f}s {waited * scale:>10.1f}s {sent:>9} {refused:>10}")
    before, now = rows[0][1], rows[1][1]
    print(f"poll wait, FIFO / poll first: {before / max(now, 1e-6):.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lookups", type=int, default=40)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--max-queue", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
