"""HTTP front end of the emulator: the aiohttp app, REST dispatch, gateway upgrade, state page."""

from __future__ import annotations

import json
import logging
from types import TracebackType
from typing import Self

from aiohttp import BodyPartReader, web

from .api import ApiError, Ctx, Route, api_error
from .core import EmulatorCore, RequestRecord
from .state import Attachment, utcnow

log = logging.getLogger(__name__)


class HttpFrontend(EmulatorCore):
    """The aiohttp server: start and stop, and the REST dispatch (auth, rate limits, errors)."""

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", r"/api/v{version:\d+}/{tail:.*}", self._handle_api)
        app.router.add_get("/", self._handle_gateway)
        app.router.add_get("/resume", self._handle_gateway)
        app.router.add_get("/_emulator/state", self._handle_state)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockname = self._runner.addresses[0]
        self.port = int(sockname[1])
        log.info("Discord emulator listening on %s", self.base_url)
        return self

    async def stop(self) -> None:
        if self._runner is None:
            return
        await self.gateway.close_all(1001)
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- HTTP plumbing ---------------------------------------------------------------------

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        path_matched = False
        for route in self._routes:
            m = route.pattern.match(path)
            if m is None:
                continue
            # A literal segment (@me) beats a parameter: /users/@me/channels vs /users/{id}.
            path_matched = True
            if route.method == method:
                return route, m.groupdict(), True
        return None, {}, path_matched

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        method = request.method
        self.stats.requests += 1
        headers: dict[str, str] = {"Via": "1.1 google"}
        route, params, path_known = self._match(method, path)
        route_name = route.template if route else path
        try:
            if route is None:
                if path_known:
                    raise api_error(405, 0, "405: Method Not Allowed")
                raise api_error(404, 0, "404: Not Found")
            if route.auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise api_error(401, 0, "401: Unauthorized")
            if route.bucket is not None:
                major = params.get(route.major, "") if route.major else ""
                config = self.default_rate_limit
                if route.bucket == "messages-post" and self.message_rate_limit is not None:
                    config = self.message_rate_limit
                decision = self._limiter.consume(route.bucket, major, config)
                headers.update(decision.headers)
                if not decision.allowed:
                    raise ApiError(
                        429,
                        {
                            "message": "You are being rate limited.",
                            "retry_after": round(decision.retry_after, 3),
                            "global": decision.is_global,
                        },
                    )
            ctx = Ctx(params=params, query=request.query, body=None, files=[])
            await self._read_body(request, ctx)
            status, body = await route.handler(ctx)
        except ApiError as exc:
            status, body = exc.status, exc.body
            headers.update(exc.headers)
            if status == 400:
                self.stats.validation_errors += 1
            content_type = exc.content_type
        else:
            content_type = "application/json"
        if status == 429:
            self.stats.rate_limited += 1
        self.stats.by_route[f"{method} {route_name}"] += 1
        self.stats.statuses[status] += 1
        self.requests.append(RequestRecord(method, path, route_name, status, utcnow()))
        self._notify()
        if status == 204:
            return web.Response(status=204, headers=headers)
        if isinstance(body, str) and content_type != "application/json":
            headers["Content-Type"] = content_type
            return web.Response(status=status, body=body.encode(), headers=headers)
        # Exactly "application/json": discord.py only parses JSON with that content type.
        headers["Content-Type"] = "application/json"
        return web.Response(
            status=status, body=json.dumps(body, separators=(",", ":")).encode(), headers=headers
        )

    async def _read_body(self, request: web.Request, ctx: Ctx) -> None:
        if not request.can_read_body:
            return
        ctype = request.content_type
        if ctype == "application/json":
            try:
                ctx.body = json.loads(await request.read() or b"null")
            except ValueError:
                raise api_error(400, 50109, "The request body contains invalid JSON.") from None
        elif ctype == "multipart/form-data":
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    continue
                data = await part.read()
                if part.name == "payload_json":
                    ctx.body = json.loads(data or b"null")
                else:
                    ctx.files.append(
                        Attachment(
                            id=self.world.snowflakes.next(),
                            filename=part.filename or "file",
                            size=len(data),
                            content_type=part.headers.get("Content-Type"),
                        )
                    )

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(
                status=404, text="this is the emulated gateway; connect with a websocket"
            )
        return await self.gateway.handle(request)

    async def _handle_state(self, request: web.Request) -> web.StreamResponse:
        body = {
            "application_id": str(self.application_id),
            "stats": {
                "requests": self.stats.requests,
                "rate_limited": self.stats.rate_limited,
                "messages_created": self.stats.messages_created,
                "nonce_duplicates": self.stats.nonce_duplicates,
            },
            "messages": [self.world.message_payload(m) for m in self.created_messages],
            "command_syncs": len(self.command_syncs),
            "sessions": [
                {"shard": [s.shard_id, s.shard_count], "connected": s.connection is not None}
                for s in self.gateway.sessions.values()
            ],
        }
        return web.Response(
            body=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
