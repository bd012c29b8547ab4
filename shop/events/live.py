"""The realtime service's core (run by `python realtime.py`): WebSocket connections that replay
events after `last_event_id` out of PostgreSQL, then receive live ones as they commit.

One asyncio process holds every connection; nothing per connection touches the database
after its replay. One pump per process reads the log in feed order (events.log.since: never
past a transaction still in flight, so nothing is skipped) whenever a writer's commit
publishes on WAKE_CHANNEL, and every POLL seconds anyway (Redis may be down; a wake-up may
come while the transaction that holds the new events back is still open, so an empty read
after a wake-up is tried again shortly). Each event goes to every live connection allowed to
see it (a customer: their own; staff and admins: all) through that connection's queue; a
client too slow to drain MAX_QUEUED messages is closed (it reconnects with its last id),
so a slow reader never grows memory without bound.

A connection joins without a gap or a duplicate: it replays from the database up to the
pump's position at that moment, then, with no await in between, takes what the pump has
dispatched since from its buffer of recent events and becomes live. Every message carries
the event id, and a connection never sends one at or below the last it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from flask import Flask
from flask_jwt_extended import decode_token
from redis.asyncio import Redis
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from shop import metrics
from shop.auth.models import User
from shop.auth.tokens import load_token_user
from shop.events.log import WAKE_CHANNEL, newest, since
from shop.events.models import POSITION_PATTERN, EventRecord
from shop.events.schemas import EventSchema
from shop.security import Role

log = logging.getLogger(__name__)
PATH = "/api/v1/ws/notifications"
AUTH_WITHIN = 10.0  # seconds for the first message
POLL = 1.0  # seconds between reads when no wake-up comes
RETRIES_AFTER_WAKE = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)  # an empty read after a wake-up
BATCH = 500
RECENT = 10_000  # events the pump keeps for connections joining
MAX_QUEUED = 1_000  # messages waiting for one client before it is closed as too slow
UNAUTHORIZED = 4401
TOO_SLOW = 4408

Position = tuple[int, int]


@dataclass(frozen=True)
class Live:
    """An event as the pump read it: its position, owner and the message to send."""

    position: Position
    user_id: int | None
    message: str


@dataclass(eq=False)
class Client:
    connection: ServerConnection
    user_id: int
    sees_all: bool
    cursor: Position
    queue: asyncio.Queue[Live] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUED))

    def may_see(self, event: Live) -> bool:
        return self.sees_all or event.user_id == self.user_id

    def offer(self, event: Live) -> bool:
        """Queue `event` (one it may see); False when the client is too slow for it."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True


def _live(event: EventRecord, dump: Any) -> Live:
    return Live((event.txid, event.id), event.user_id, json.dumps(dump(event)))


class Hub:
    """The process's pump and its live connections."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.staff: set[Client] = set()  # see every event
        self.customers: dict[int, set[Client]] = {}  # by user id: see their own
        self.recent: deque[Live] = deque(maxlen=RECENT)
        self.forgotten: Position = (0, 0)  # the newest position that fell out of `recent`
        self.position: Position = (0, 0)
        self.woken = asyncio.Event()
        self.ready = asyncio.Event()  # the pump knows where the log ends
        self._closing: set[asyncio.Task[None]] = set()

    # --- the database, in threads (each read in an app context of its own) ---------------

    def _read(self, **kwargs: Any) -> list[Live]:
        with self.app.app_context():
            dump = EventSchema().dump
            return [_live(event, dump) for event in since(**kwargs)]

    def _newest(self) -> Position:
        with self.app.app_context():
            return newest()

    def _user(self, token: str) -> tuple[User, float] | None:
        """The user behind an access token and when it expires, or None."""
        with self.app.app_context():
            try:
                payload = decode_token(token)
            except Exception:
                return None
            if payload.get("type") != "access":
                return None
            user = load_token_user(payload)
            return None if user is None else (user, float(payload["exp"]))

    # --- the pump ---------------------------------------------------------------------------

    async def run(self) -> None:
        while True:  # PostgreSQL may not answer yet: connections wait for the pump, not fail
            try:
                self.position = self.forgotten = await asyncio.to_thread(self._newest)
                self.ready.set()
                break
            except Exception:
                log.warning("cannot read the event log yet; trying again", exc_info=True)
                await asyncio.sleep(POLL)
        listener = asyncio.create_task(self._listen())
        try:
            await self._pump()
        finally:
            listener.cancel()

    async def _listen(self) -> None:
        """Wake-ups from writers' commits; reconnects while Redis is away (the pump polls)."""
        url = self.app.config["REDIS_URL"]
        if not url:
            return
        while True:
            try:
                async with Redis.from_url(url) as redis, redis.pubsub() as pubsub:
                    await pubsub.subscribe(WAKE_CHANNEL)
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self.woken.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("wake-ups unavailable; polling every %s s", POLL, exc_info=True)
                await asyncio.sleep(POLL)

    async def _pump(self) -> None:
        while True:
            woken = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.woken.wait(), POLL)
                woken = True
            self.woken.clear()
            got = await self.read_on()
            for delay in RETRIES_AFTER_WAKE if woken and not got else ():
                await asyncio.sleep(delay)  # held back by a transaction still in flight
                if await self.read_on():
                    break

    async def read_on(self) -> int:
        """Read what committed since the pump's position and hand it to the clients."""
        total = 0
        while True:
            try:
                events = await asyncio.to_thread(
                    self._read, txid=self.position[0], id_=self.position[1], limit=BATCH
                )
            except Exception:
                log.exception("could not read the event log; trying again")
                return total
            for event in events:
                if len(self.recent) == RECENT:
                    self.forgotten = self.recent[0].position
                self.recent.append(event)
                self.position = event.position
            for event in events:
                owners = self.customers.get(event.user_id, ()) if event.user_id else ()
                for client in [*self.staff, *owners]:
                    if not client.offer(event):
                        self.drop(client, TOO_SLOW, "too slow: reconnect with last_event_id")
            total += len(events)
            if len(events) < BATCH:
                return total

    def _join(self, client: Client) -> None:
        if client.sees_all:
            self.staff.add(client)
        else:
            self.customers.setdefault(client.user_id, set()).add(client)

    def _leave(self, client: Client) -> None:
        self.staff.discard(client)
        mine = self.customers.get(client.user_id)
        if mine is not None:
            mine.discard(client)
            if not mine:
                del self.customers[client.user_id]

    def drop(self, client: Client, code: int, reason: str) -> None:
        self._leave(client)
        closing = asyncio.ensure_future(client.connection.close(code, reason))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    # --- a connection -----------------------------------------------------------------------

    async def serve(self, connection: ServerConnection) -> None:
        metrics.WEBSOCKET_CONNECTIONS.inc()
        try:
            await self._serve(connection)
        finally:
            metrics.WEBSOCKET_CONNECTIONS.dec()

    async def _serve(self, connection: ServerConnection) -> None:
        authenticated = await self._authenticate(connection)
        if authenticated is None:
            return
        (user, expires_at), last_event_id = authenticated
        await self.ready.wait()  # without a last id, a client starts where the log ends
        client = Client(
            connection,
            user_id=user.id,
            sees_all=user.has_role(Role.STAFF),
            cursor=EventRecord.parse_position(last_event_id) if last_event_id else self.position,
        )
        await connection.send(json.dumps({"type": "welcome", "user_id": user.id}))
        expiry = asyncio.get_running_loop().call_later(
            max(0.0, expires_at - time.time()),
            lambda: self.drop(client, UNAUTHORIZED, "token expired"),
        )
        sender = None
        try:
            if await self._replay(client, user):
                sender = asyncio.create_task(self._send_live(client))
                async for _ in connection:  # what the client sends is not read; until it goes
                    pass
        except ConnectionClosed:
            pass
        finally:
            expiry.cancel()
            self._leave(client)
            if sender is not None:
                sender.cancel()

    async def _authenticate(
        self, connection: ServerConnection
    ) -> tuple[tuple[User, float], str | None] | None:
        """By `Authorization: Bearer` on the upgrade, or by the first message (within
        AUTH_WITHIN seconds); else the connection is closed with 4401."""
        header = connection.request.headers.get("Authorization", "") if connection.request else ""
        token, last_event_id = header.removeprefix("Bearer ").strip(), None
        if not token:
            try:
                first = json.loads(await asyncio.wait_for(connection.recv(), AUTH_WITHIN))
            except (TimeoutError, ValueError, ConnectionClosed):
                first = None
            if not isinstance(first, dict) or first.get("action") != "auth":
                await connection.close(UNAUTHORIZED, "send {action: auth, token} first")
                return None
            token, last_event_id = str(first.get("token", "")), first.get("last_event_id")
        if last_event_id is not None and not (
            isinstance(last_event_id, str) and POSITION_PATTERN.match(last_event_id)
        ):
            await connection.close(UNAUTHORIZED, "last_event_id is not an event id")
            return None
        found = await asyncio.to_thread(self._user, token)
        if found is None:
            await connection.close(UNAUTHORIZED, "the token is not valid, or has expired")
            return None
        return found, last_event_id

    async def _replay(self, client: Client, user: User) -> bool:
        """Send what the client missed, then make it live (see the module's docstring);
        False when it was closed as too slow meanwhile."""
        while True:
            upto = self.position
            if client.cursor < upto:
                events = await asyncio.to_thread(
                    self._read,
                    txid=client.cursor[0],
                    id_=client.cursor[1],
                    limit=BATCH,
                    user=user,
                    upto=upto,
                )
                for event in events:
                    await client.connection.send(event.message)
                    client.cursor = event.position
                if len(events) == BATCH:
                    continue  # more of it in the database
                client.cursor = max(client.cursor, upto)
            # No await from here on: what the pump dispatched meanwhile comes from `recent`.
            if self.forgotten > client.cursor:
                continue  # it already forgot some of it: read those from the database
            for event in self.recent:
                mine = event.position > client.cursor and client.may_see(event)
                if mine and not client.offer(event):
                    await client.connection.close(TOO_SLOW, "too slow: reconnect")
                    return False
            self._join(client)
            return True

    async def _send_live(self, client: Client) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                event = await client.queue.get()
                if event.position > client.cursor:
                    await client.connection.send(event.message)
                    client.cursor = event.position


def http(app: Flask) -> Callable[[ServerConnection, Request], Response | None]:
    """What realtime.py answers over plain HTTP: `health`, and `GET /metrics` (this
    process's, under the web's access rule: METRICS_ALLOW_FROM or METRICS_TOKEN)."""

    def answer(connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != "/metrics":
            return health(connection, request)
        address = connection.remote_address[0] if connection.remote_address else None
        if not metrics.allowed(address, request.headers.get("Authorization"), app.config):
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        response = connection.respond(HTTPStatus.OK, metrics.exposition().decode())
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = metrics.CONTENT_TYPE
        return response

    return answer


def health(connection: ServerConnection, request: Request) -> Response | None:
    """`GET /health` answers 200; anything but the notifications path is a 404."""
    if request.path == "/health":
        return connection.respond(HTTPStatus.OK, "ok\n")
    if request.path.split("?", 1)[0] != PATH:
        return connection.respond(HTTPStatus.NOT_FOUND, f"WebSocket endpoint: {PATH}\n")
    return None
