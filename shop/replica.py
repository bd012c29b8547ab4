"""The read replica (DATABASE_REPLICA_URL): views marked `reads` (the reports) run their
queries on a PostgreSQL streaming replica when that cannot show a client its past, else on
the primary.

A view reads the replica only when all of these hold, else the primary:
- it is not inside a unit of work (a read that precedes a write reads the primary);
- its client (the token's user) made no write request in the last REPLICA_STICKY_SECONDS
  (every POST, PUT, PATCH or DELETE of a user sets a Redis key that long: read your writes);
- the replica is at most REPLICA_MAX_LAG_SECONDS behind: it has replayed what the primary
  had flushed at a moment that recent (LSNs compared, see `Replica.lag`);
- the replica did not fail in the last RETRY_AFTER seconds. A view that fails on the replica
  (down, a query cancelled by recovery) runs again on the primary: never a 500 for it.

REPLICA_STICKY_SECONDS >= REPLICA_MAX_LAG_SECONDS makes read-your-writes exact: by the time
a writer's key expires, a replica within the bound has replayed the write. Answers read on
the replica are not stored in the cache (shop.caching): an entry under a namespace's new
version holds only what the primary said after the write that bumped it."""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_jwt_extended import get_jwt
from redis.exceptions import RedisError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from shop import metrics
from shop.db import db, in_unit_of_work
from shop.queues import redis_connection

log = logging.getLogger(__name__)
# A replica that failed is not asked again by this process for this long.
RETRY_AFTER = 5.0
# Seconds to connect, and to wait for a sent packet's acknowledgement (a host gone from the
# network): a replica that does not answer costs one request two seconds, then is left alone.
CONNECT_ARGS = {"connect_timeout": 2, "tcp_user_timeout": 2000}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Errors of the replica's connection or statements: the view runs again on the primary.
REPLICA_ERRORS = (DBAPIError, DisconnectionError, PoolTimeout)
FLUSHED = text("SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')")
REPLAYED = text("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')")


def _sticky_key(client: str) -> str:
    return f"replica:wrote:{client}"


class Replica:
    """A process's view of the replica: its engine, how far behind it is, whether it failed."""

    def __init__(self, engine: Engine, max_lag: float) -> None:
        self.engine, self.max_lag = engine, max_lag
        # Checked at most this often (twice per bound: a current replica never looks late).
        self.check_every = min(1.0, max_lag / 2)
        self.checked_at = -math.inf
        self.failed_at = -math.inf
        # When the primary's flushed position was read (monotonic), and that position.
        self.samples: deque[tuple[float, int]] = deque()
        # The latest such moment the replica has replayed up to: it holds every commit
        # acknowledged before it (synchronous_commit on: a commit is flushed before its ack).
        self.current_as_of: float | None = None

    def lag(self) -> float:
        """Seconds the replica is known to be behind the primary (infinite: not known)."""
        now = time.monotonic()
        if now - self.checked_at >= self.check_every:
            self._check(now)
        return math.inf if self.current_as_of is None else now - self.current_as_of

    def _check(self, now: float) -> None:
        self.checked_at = now
        flushed = int(db.session.scalar(FLUSHED))  # the primary's: its errors are the request's
        with self.engine.connect() as connection:
            replayed = connection.scalar(REPLAYED)
        if replayed is None:  # not in recovery: a promoted replica, or not a replica at all
            log.warning("DATABASE_REPLICA_URL is not a replica in recovery; reading the primary")
            self.current_as_of = None
            return
        self.samples.append((now, flushed))
        while self.samples[0][0] < now - self.max_lag and len(self.samples) > 1:
            self.samples.popleft()
        caught_up = [moment for moment, position in self.samples if position <= replayed]
        if caught_up:
            self.current_as_of = max(caught_up)

    def serves(self) -> bool:
        """Whether this request's reads may go to the replica."""
        if in_unit_of_work() or time.monotonic() - self.failed_at < RETRY_AFTER:
            return False
        client = _client()
        connection = redis_connection()
        if client is None or connection is None:
            return False
        try:
            if connection.exists(_sticky_key(client)):
                return False
        except RedisError:  # who wrote is not known: the primary
            return False
        try:
            return self.lag() <= self.max_lag
        except REPLICA_ERRORS:
            self.failed()
            return False

    def failed(self) -> None:
        self.failed_at = time.monotonic()
        self.current_as_of = None
        log.warning("read replica failed; reading the primary for %s s", RETRY_AFTER,
                    exc_info=True)  # fmt: skip

    @contextmanager
    def session(self) -> Iterator[None]:
        """`db.session` is a session on the replica meanwhile (a unit of work refuses it)."""
        registry = db.session.registry
        primary = registry() if registry.has() else None
        replica = Session(self.engine, expire_on_commit=False, info={"replica": True})
        # A plain SQLAlchemy session: flask-sqlalchemy's binds every table to the primary.
        registry.set(replica)  # type: ignore[arg-type]
        try:
            yield
        finally:
            replica.close()
            if primary is None:
                registry.clear()
            else:
                registry.set(primary)


def _client() -> str | None:
    """Who is asking: the user of the request's token, if one was verified."""
    try:
        subject = get_jwt().get("sub")
    except RuntimeError:  # no token verified in this request
        return None
    return None if subject is None else str(subject)


def init_app(app: Flask) -> None:
    url = app.config["DATABASE_REPLICA_URL"]
    if not url:
        return
    app.extensions["replica"] = Replica(
        create_engine(url, connect_args=CONNECT_ARGS), app.config["REPLICA_MAX_LAG_SECONDS"]
    )
    app.after_request(_mark_writer)


def _mark_writer(response: Response) -> Response:
    """A user's write request keeps their reads on the primary for REPLICA_STICKY_SECONDS."""
    if request.method in SAFE_METHODS:
        return response
    client, connection = _client(), redis_connection()
    if client is not None and connection is not None:
        sticky = current_app.config["REPLICA_STICKY_SECONDS"]
        try:
            connection.set(_sticky_key(client), 1, px=int(sticky * 1000))
        except RedisError:
            log.warning("could not keep user %s on the primary after a write", client,
                        exc_info=True)  # fmt: skip
    return response


def served() -> bool:
    """Whether this request's answer was read on the replica (then it is not cached)."""
    return bool(g.get("read_replica", False))


def reads(view: Any) -> Any:
    """Run a read-only view on the replica when it may (see the module's docstring)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        replica: Replica | None = current_app.extensions.get("replica")
        if replica is not None and replica.serves():
            g.read_replica = True
            try:
                with replica.session():
                    answer = view(*args, **kwargs)
                metrics.child(metrics.REPLICA_READS, "replica").inc()
                return answer
            except REPLICA_ERRORS:
                replica.failed()
                g.read_replica = False
        metrics.child(metrics.REPLICA_READS, "primary").inc()
        return view(*args, **kwargs)

    return wrapper
