"""The emulated Discord gateway: one websocket per shard connection.

Speaks gateway v10 with JSON encoding and, when the client asks for it with
`?compress=zlib-stream` (discord.py's default unless zstandard is installed),
one zlib stream per connection flushed with Z_SYNC_FLUSH after every payload.
Implements HELLO, HEARTBEAT/ACK, IDENTIFY (token, intents, shard), READY,
GUILD_CREATE per guild of the shard, RESUME with replay of missed events,
REQUEST_GUILD_MEMBERS, and Discord's close codes for bad input. Sessions
outlive their connection for `resume_window` seconds so a reconnecting client
can RESUME; a new process with the same token simply IDENTIFYs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .state import JSON, shard_for_guild

if TYPE_CHECKING:
    from .core import EmulatorCore

log = logging.getLogger(__name__)


class Op:
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class Intent:
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    DIRECT_MESSAGES = 1 << 12
    MESSAGE_CONTENT = 1 << 15

    PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT
    KNOWN = (1 << 26) - 1


class CloseCode:
    UNKNOWN_ERROR = 4000
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_SEQ = 4007
    SESSION_TIMED_OUT = 4009
    INVALID_SHARD = 4010
    INVALID_API_VERSION = 4012
    INVALID_INTENTS = 4013
    DISALLOWED_INTENTS = 4014


@dataclass(frozen=True)
class SentEvent:
    """A DISPATCH the gateway wrote to a live connection (for assertions in tests)."""

    shard_id: int
    session_id: str
    name: str
    seq: int
    data: JSON


@dataclass
class GatewaySession:
    session_id: str
    shard_id: int
    shard_count: int
    intents: int
    seq: int = 0
    buffer: deque[JSON] = field(default_factory=lambda: deque(maxlen=5000))
    connection: Connection | None = None
    ready: bool = False
    disconnected_at: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def receives_guild(self, guild_id: int) -> bool:
        return shard_for_guild(guild_id, self.shard_count) == self.shard_id


class Connection:
    """One websocket: serialises writes and owns the zlib stream."""

    def __init__(self, ws: web.WebSocketResponse, *, compress: bool, path: str) -> None:
        self.ws = ws
        self.path = path
        self._zlib = zlib.compressobj() if compress else None
        self._lock = asyncio.Lock()
        self.session: GatewaySession | None = None
        self.closed_by_server = False
        self.last_heartbeat: float = time.monotonic()

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def send(self, payload: JSON) -> None:
        data = json.dumps(payload, separators=(",", ":"))
        async with self._lock:
            if self.ws.closed:
                return
            try:
                if self._zlib is not None:
                    chunk = self._zlib.compress(data.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(chunk)
                else:
                    await self.ws.send_str(data)
            except (ConnectionError, RuntimeError) as exc:
                log.debug("gateway send failed, client went away: %s", exc)

    async def close(self, code: int, message: str = "") -> None:
        self.closed_by_server = True
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=code, message=message.encode())


class Gateway:
    def __init__(self, emulator: EmulatorCore) -> None:
        self._emu = emulator
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: set[Connection] = set()
        self.sent_events: list[SentEvent] = []
        self.identify_count = 0
        self.resume_count = 0
        self.session_start_remaining = 1000

    # -- the websocket endpoint ------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        emu = self._emu
        if request.query.get("encoding", "json") != "json":
            raise web.HTTPBadRequest(text="the emulator only speaks encoding=json")
        compress_mode = request.query.get("compress")
        if compress_mode not in (None, "zlib-stream"):
            raise web.HTTPBadRequest(text=f"unsupported compress={compress_mode}")
        ws = web.WebSocketResponse(max_msg_size=4096 * 1024, autoping=True)
        await ws.prepare(request)
        conn = Connection(ws, compress=compress_mode == "zlib-stream", path=request.path)
        self.connections.add(conn)
        emu._notify()
        version = request.query.get("v")
        try:
            if version is not None and version not in ("9", "10"):
                await conn.close(CloseCode.INVALID_API_VERSION, "Invalid API version")
                return ws
            await conn.send(
                {
                    "op": Op.HELLO,
                    "d": {"heartbeat_interval": emu.heartbeat_interval_ms, "_trace": ["emulator"]},
                    "s": None,
                    "t": None,
                }
            )
            # A client that sends nothing (not even heartbeats) for 1.5 intervals is a zombie.
            silence = emu.heartbeat_interval_ms / 1000 * 1.5
            while True:
                try:
                    msg = await ws.receive(timeout=silence)
                except TimeoutError:
                    await conn.close(CloseCode.SESSION_TIMED_OUT, "Session timed out.")
                    break
                if msg.type is not WSMsgType.TEXT:
                    if msg.type is WSMsgType.BINARY:
                        await conn.close(CloseCode.DECODE_ERROR, "Error while decoding payload.")
                    break
                try:
                    payload = json.loads(msg.data)
                    op = payload["op"]
                except (ValueError, KeyError, TypeError):
                    await conn.close(CloseCode.DECODE_ERROR, "Error while decoding payload.")
                    break
                await self._on_payload(conn, op, payload.get("d"))
        finally:
            self._detach(conn, ws.close_code)
        return ws

    def _detach(self, conn: Connection, close_code: int | None) -> None:
        self.connections.discard(conn)
        session = conn.session
        if session is not None and session.connection is conn:
            session.connection = None
            session.disconnected_at = time.monotonic()
            if close_code in (1000, 1001) and not conn.closed_by_server:
                # A clean close from the client ends the session, as on Discord.
                self.sessions.pop(session.session_id, None)
        log.debug(
            "gateway connection closed (%s, by server: %s)", close_code, conn.closed_by_server
        )
        self._emu._notify()

    async def _on_payload(self, conn: Connection, op: int, data: Any) -> None:
        if op == Op.HEARTBEAT:
            conn.last_heartbeat = time.monotonic()
            await conn.send({"op": Op.HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == Op.IDENTIFY:
            await self._identify(conn, data)
        elif op == Op.RESUME:
            await self._resume(conn, data)
        elif conn.session is None:
            await conn.close(CloseCode.NOT_AUTHENTICATED, "Not authenticated.")
        elif op == Op.REQUEST_GUILD_MEMBERS:
            await self._request_members(conn.session, data)
        elif op in (Op.PRESENCE_UPDATE, Op.VOICE_STATE_UPDATE):
            pass
        else:
            await conn.close(CloseCode.UNKNOWN_OPCODE, "Unknown opcode.")

    async def _identify(self, conn: Connection, data: Any) -> None:
        emu = self._emu
        if conn.session is not None:
            await conn.close(CloseCode.ALREADY_AUTHENTICATED, "Already authenticated.")
            return
        if not isinstance(data, dict) or data.get("token") != emu.token:
            await conn.close(CloseCode.AUTHENTICATION_FAILED, "Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents & ~Intent.KNOWN:
            await conn.close(CloseCode.INVALID_INTENTS, "Invalid intent(s).")
            return
        if intents & Intent.PRIVILEGED & ~emu.privileged_intents:
            await conn.close(CloseCode.DISALLOWED_INTENTS, "Disallowed intent(s).")
            return
        shard = data.get("shard") or [0, 1]
        try:
            shard_id, shard_count = int(shard[0]), int(shard[1])
        except (TypeError, ValueError, IndexError):
            shard_id, shard_count = -1, 0
        if shard_count < 1 or not 0 <= shard_id < shard_count:
            await conn.close(CloseCode.INVALID_SHARD, "Invalid shard.")
            return

        self._expire_sessions()
        self.identify_count += 1
        self.session_start_remaining = max(0, self.session_start_remaining - 1)
        session = GatewaySession(
            session_id=secrets.token_hex(16),
            shard_id=shard_id,
            shard_count=shard_count,
            intents=intents,
            connection=conn,
        )
        self.sessions[session.session_id] = session
        conn.session = session
        world = emu.world
        guild_ids = [
            gid
            for gid, guild in world.guilds.items()
            if session.receives_guild(gid) and world.bot.id in guild.members
        ]
        me = world.bot.to_payload()
        me.update({"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"})
        ready = {
            "v": 10,
            "user": me,
            "user_settings": {},
            "guilds": [{"id": str(gid), "unavailable": True} for gid in guild_ids],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": emu.resume_gateway_url,
            "shard": [shard_id, shard_count],
            "application": {"id": str(world.application_id), "flags": emu.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
            "_trace": ["emulator"],
        }
        log.info("gateway IDENTIFY shard %s/%s -> %d guilds", shard_id, shard_count, len(guild_ids))
        await self._send_dispatch(session, "READY", ready)
        include_members = bool(intents & Intent.GUILD_MEMBERS)
        for gid in guild_ids:
            if gid in world.guilds:
                body = world.guild_payload(gid, include_all_members=include_members)
                await self._send_dispatch(session, "GUILD_CREATE", body)
        session.ready = True
        emu._notify()

    async def _resume(self, conn: Connection, data: Any) -> None:
        emu = self._emu
        if not isinstance(data, dict) or data.get("token") != emu.token:
            await conn.close(CloseCode.AUTHENTICATION_FAILED, "Authentication failed.")
            return
        self._expire_sessions()
        session = self.sessions.get(str(data.get("session_id")))
        raw_seq = data.get("seq")
        seq = raw_seq if isinstance(raw_seq, int) else -1
        resumable = session is not None and 0 <= seq <= session.seq
        if session is not None and resumable:
            oldest = session.buffer[0]["s"] if session.buffer else session.seq + 1
            resumable = seq + 1 >= oldest  # otherwise the events the client missed are gone
        if session is None or not resumable:
            await conn.send({"op": Op.INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        async with session.lock:
            old = session.connection
            session.connection = conn
            session.disconnected_at = None
            conn.session = session
            if old is not None and old is not conn:
                old.session = None
                await old.close(CloseCode.UNKNOWN_ERROR, "Session resumed elsewhere.")
            replay = [p for p in session.buffer if p["s"] > seq]
            for payload in replay:
                await conn.send(payload)
        self.resume_count += 1
        await self._send_dispatch(session, "RESUMED", {"_trace": ["emulator"]})
        log.info("gateway RESUME shard %s, replayed %d events", session.shard_id, len(replay))
        emu._notify()

    async def _request_members(self, session: GatewaySession, data: Any) -> None:
        world = self._emu.world
        if not isinstance(data, dict):
            return
        guild_ids = data.get("guild_id")
        if not isinstance(guild_ids, list):
            guild_ids = [guild_ids]
        for raw in guild_ids:
            gid = int(raw)
            guild = world.guilds.get(gid)
            if guild is None:
                continue
            user_ids = data.get("user_ids")
            if user_ids is not None:
                wanted = {int(u) for u in (user_ids if isinstance(user_ids, list) else [user_ids])}
                members = [uid for uid in guild.members if uid in wanted]
            elif session.intents & Intent.GUILD_MEMBERS:
                prefix = str(data.get("query") or "").lower()
                members = [
                    uid
                    for uid in guild.members
                    if world.users[uid].username.lower().startswith(prefix)
                ]
            else:
                members = []
            chunk: JSON = {
                "guild_id": str(gid),
                "members": [world.member_payload(gid, uid) for uid in members],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    # -- dispatching -------------------------------------------------------------------

    async def _send_dispatch(self, session: GatewaySession, name: str, data: JSON) -> None:
        async with session.lock:
            session.seq += 1
            payload = {"op": Op.DISPATCH, "t": name, "s": session.seq, "d": data}
            session.buffer.append(payload)
            conn = session.connection
            if conn is not None and not conn.closed:
                self.sent_events.append(
                    SentEvent(session.shard_id, session.session_id, name, session.seq, data)
                )
                await conn.send(payload)

    def _expire_sessions(self) -> None:
        cutoff = time.monotonic() - self._emu.resume_window
        for sid, session in list(self.sessions.items()):
            if session.connection is None and (session.disconnected_at or 0) < cutoff:
                del self.sessions[sid]

    def _targets(self, guild_id: int | None, intent: int | None) -> list[GatewaySession]:
        self._expire_sessions()
        out = []
        for session in self.sessions.values():
            if intent is not None and not session.intents & intent:
                continue
            if guild_id is None:
                if session.shard_id != 0:  # DMs always go to shard 0
                    continue
            elif not session.receives_guild(guild_id):
                continue
            out.append(session)
        return out

    async def dispatch(
        self, name: str, data: JSON, *, guild_id: int | None, intent: int | None = Intent.GUILDS
    ) -> int:
        """Send an event to every session that receives this guild (or DMs); returns how many."""
        targets = self._targets(guild_id, intent)
        for session in targets:
            await self._send_dispatch(session, name, data)
        return len(targets)

    def ready_shard_sessions(self, guild_id: int | None) -> list[GatewaySession]:
        """Sessions that are connected, READY and would receive this guild's events."""
        return [
            s
            for s in self._targets(guild_id, None)
            if s.ready and s.connection is not None and not s.connection.closed
        ]

    # -- disruptions tests can cause -----------------------------------------------------

    async def close_all(self, code: int) -> None:
        for conn in list(self.connections):
            await conn.close(code)

    async def send_op_all(self, op: int, data: Any) -> None:
        for conn in list(self.connections):
            if conn.session is not None:
                await conn.send({"op": op, "d": data, "s": None, "t": None})
