"""The send gate: admission and pacing of alert posts to Discord, and their answers.

`bot.delivery.Deliverer` posts every alert message through one `SendGate`. The gate
bounds the posts awaiting an answer, paces them under Discord's global rate limit
once a global 429 shows it, and hands over the confirmed message id as soon as
Discord's answer is read (through an aiohttp trace of discord.py's requests).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace

import aiohttp
import yarl

log = logging.getLogger(__name__)

# Discord allows a bot about 50 requests per second in all; once it has said so (a
# global 429), alerts take most of that and leave room for commands and DM look-ups.
PACED_POSTS_PER_SECOND = 45
MIN_PACED_POSTS_PER_SECOND = 10
GLOBAL_PACE_SECONDS = 60.0

_MESSAGES_PATH = re.compile(r"/channels/(\d+)/messages$")


class SendGate:
    """Admission of message posts, and their answers as soon as they arrive.

    discord.py is given an aiohttp trace (`attach`) through which the gate sees
    each answer to a post. After an answer that used up the channel's rate-limit
    bucket discord.py sleeps inside `send()` until the bucket resets, up to 5 s;
    the gate hands the confirmed message id over at once instead, so the
    outbox is marked, the destination's next batch is queued behind the bucket,
    and other channels' posts are not held up by that sleep.

    At most `max_in_flight` posts wait for an answer at once. Discord also limits
    a bot to about 50 requests per second in all; bursts under that are fine and
    the per-channel buckets usually bind first, so posts are not paced until a
    429 with the global scope arrives. From then on, for `paced_for` seconds
    after the last one, at most `per_second` posts start in any second (the
    retries discord.py makes on its own count too), a fifth fewer each time the
    limit is hit again: retrying into the global limit would count toward
    Discord's invalid-request ban.
    """

    def __init__(
        self, *, max_in_flight: int, per_second: int, paced_for: float = GLOBAL_PACE_SECONDS
    ) -> None:
        self._slots = asyncio.Semaphore(max_in_flight)
        self._full_rate = per_second
        self._per_second = per_second
        self._paced_for = paced_for
        self._pace_until = float("-inf")
        self._started: deque[float] = deque(maxlen=per_second)  # recent post start times
        self._posts: dict[int, _Post] = {}  # channel id -> its post awaiting an answer

    @property
    def paced(self) -> bool:
        return asyncio.get_running_loop().time() < self._pace_until

    def attach(self, trace: aiohttp.TraceConfig) -> None:
        """Watch discord.py's requests (the trace passed as the client's `http_trace`)."""
        trace.on_request_start.append(self._on_request_start)
        trace.on_request_end.append(self._on_request_end)
        trace.on_request_exception.append(self._on_request_exception)
        trace.on_response_chunk_received.append(self._on_response_body)

    @asynccontextmanager
    async def post(self, channel_id: int, nonce: str) -> AsyncIterator[asyncio.Future[int]]:
        """Wait for a slot (and a turn when paced), then let the body post to `channel_id`.

        Yields a future that gets the id of the message Discord created with `nonce`
        as soon as the answer is read, before discord.py's `send()` returns.
        """
        await self._slots.acquire()
        post = _Post(nonce, asyncio.get_running_loop().create_future(), self._slots)
        self._posts[channel_id] = post
        try:
            await self._wait_turn()
            yield post.confirmed
        finally:
            if self._posts.get(channel_id) is post:
                del self._posts[channel_id]
            post.release()

    async def _wait_turn(self) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < self._pace_until and len(self._started) >= self._per_second:
            # The deque holds the latest starts: wait until the `per_second`-th latest
            # is a second old.
            wait = self._started[-self._per_second] + 1.0 - loop.time()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        self._started.append(loop.time())

    def _post_to(self, method: str, url: yarl.URL) -> _Post | None:
        if method != "POST":
            return None
        match = _MESSAGES_PATH.search(url.path)
        return None if match is None else self._posts.get(int(match.group(1)))

    async def _on_request_start(
        self,
        _session: aiohttp.ClientSession,
        _ctx: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        if params.method != "POST" or _MESSAGES_PATH.search(params.url.path) is None:
            return
        post = self._post_to(params.method, params.url)
        if post is not None and not post.started:
            post.started = True  # counted when it got its turn
        else:
            # discord.py retrying after a 429 or 5xx (it needs no turn), or a post of
            # someone else's: it still counts against the global limit.
            self._started.append(asyncio.get_running_loop().time())

    async def _on_request_end(
        self,
        _session: aiohttp.ClientSession,
        _ctx: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        response = params.response
        if response.status == 429 and (
            response.headers.get("X-RateLimit-Global", "").lower() == "true"
            or response.headers.get("X-RateLimit-Scope") == "global"
        ):
            if not self.paced:
                self._per_second = self._full_rate
                log.warning("Discord's global rate limit was hit; pacing alert posts")
            else:
                # Hit again while paced (clock jitter, other traffic): slow down further.
                self._per_second = max(MIN_PACED_POSTS_PER_SECOND, self._per_second * 4 // 5)
                log.warning("global rate limit hit while paced; %d posts/s", self._per_second)
            self._pace_until = asyncio.get_running_loop().time() + self._paced_for
        post = self._post_to(params.method, params.url)
        if post is not None:
            post.release()  # answered (a retry after a 429 or 5xx goes without a slot)

    async def _on_request_exception(
        self,
        _session: aiohttp.ClientSession,
        _ctx: SimpleNamespace,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        post = self._post_to(params.method, params.url)
        if post is not None:
            post.release()

    async def _on_response_body(
        self,
        _session: aiohttp.ClientSession,
        _ctx: SimpleNamespace,
        params: aiohttp.TraceResponseChunkReceivedParams,
    ) -> None:
        # discord.py reads each answer whole, so the "chunk" is the entire JSON body.
        post = self._post_to(params.method, params.url)
        if post is None or post.confirmed.done():
            return
        try:
            body = json.loads(params.chunk)
        except ValueError:
            return
        # Error bodies carry no nonce; another post to the channel carries another one.
        if isinstance(body, dict) and body.get("nonce") == post.nonce and "id" in body:
            post.confirmed.set_result(int(body["id"]))


@dataclass(slots=True)
class _Post:
    """One post in flight: its nonce, the message id once confirmed, its slot."""

    nonce: str
    confirmed: asyncio.Future[int]
    slots: asyncio.Semaphore
    released: bool = False
    started: bool = False  # its first request went out (retries are counted separately)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.slots.release()
