"""Behaviour facts (a product viewed, a search made, an item added to a cart) recorded without
making a request wait on a write: a process gathers its facts and sends them with one RPUSH
onto a Redis list per batch (at most BATCH_FACTS facts or BATCH_SECONDS old: a thread of the
process sends what waits that long), and a periodic job (reports.behaviour) takes them off in
batches and writes them to the database in bulk. A cached product read is one Redis round trip;
a round trip more per view would cost a third of its throughput, a batch's costs nothing to
speak of. What a process had not sent when it died (a second's facts at most) is lost: these
are samples. Without Redis (the embedded default) the list is a buffer in this process,
emptied by the same job in the same process (`flask serve` runs it in its scheduler thread).

A batch that cannot be pushed (Redis down or slow) is dropped and counted, never retried, and
for RETRY_AFTER seconds this process pushes nothing (a hung Redis costs one short timeout, not
one per request); the count goes to Redis with the next push, for the job's summary.

The job moves a batch atomically to a list of its own under a token before writing it; it
records the token in the same transaction as the rows and clears the batch after commit, so a
run that died halfway leaves the batch to the next run, which writes it once.
"""

from __future__ import annotations

import atexit
import enum
import json
import logging
import os
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, has_request_context, request
from redis.exceptions import RedisError

from shop.db import after_commit, in_unit_of_work, uow_state
from shop.queues import redis_connection

log = logging.getLogger(__name__)


class Fact(enum.StrEnum):
    """What a fact is: an interaction with a product (reports.models.InteractionKind), a
    search, or a login that takes over an anonymous session's interactions."""

    VIEW = "view"
    CART_ADD = "cart_add"
    WISHLIST_ADD = "wishlist_add"
    PURCHASE = "purchase"
    RATING = "rating"
    SEARCH = "search"
    LOGIN = "login"


SESSION_HEADER = "X-Session-ID"
# An anonymous client's id of its own choosing (a UUID, say): letters, digits, '-' and '_'.
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
SESSION_ID_DESCRIPTION = (
    "an anonymous client's own id (8 to 128 letters, digits, '-' or '_'): what it views is "
    "recorded under it, and given to the account that logs in with it; another value is ignored"
)
FACTS, BATCH, BATCH_TOKEN, DROPPED = (
    f"shop:tracking:{name}" for name in ("facts", "batch", "batch-token", "dropped")
)
RETRY_AFTER = 5.0
BATCH_FACTS = 100  # a process sends its facts at this many, or when the oldest is this old:
BATCH_SECONDS = 1.0
# The embedded buffer holds at most this many (a process whose job never runs drops the rest).
MAX_BUFFERED = 100_000
# Moves up to ARGV[1] facts into the batch list under the token ARGV[2], unless a batch is
# there already (a run that did not finish): then that one again. Answers {token, facts}.
_TAKE = """
local token = redis.call('GET', KEYS[3])
if token then return {token, redis.call('LRANGE', KEYS[2], 0, -1)} end
local facts = redis.call('LPOP', KEYS[1], ARGV[1])
if not facts then return {false, {}} end
redis.call('RPUSH', KEYS[2], unpack(facts))
redis.call('SET', KEYS[3], ARGV[2])
return {ARGV[2], facts}
"""
# Clears the batch of token ARGV[1] (and only it).
_DONE = """
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[1], KEYS[2]) end
return 0
"""


@dataclass
class _State:
    """One app's tracking in this process: the facts gathered (or, embedded, the buffer), the
    thread that sends what waits, and the failures."""

    redis: Any = None  # the app's Redis client, for the sending thread
    buffer: deque[str] = field(default_factory=deque)
    oldest: float = 0.0  # when the first fact in `buffer` came (monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sender_pid: int = 0  # the process whose thread sends (a forked worker starts its own)
    down_until: float = 0.0
    dropped: int = 0  # not yet added to Redis's count


def init_app(app: Flask) -> None:
    state = _State(redis=app.extensions.get("redis"))
    app.extensions["tracking"] = state
    atexit.register(_send, state)


def _state() -> _State:
    state: _State = current_app.extensions["tracking"]
    return state


def session_id() -> str | None:
    """The request's valid X-Session-ID, if any."""
    if not has_request_context():
        return None
    value = request.headers.get(SESSION_HEADER)
    return value if value is not None and SESSION_ID.match(value) else None


def enabled() -> bool:
    """TRACK_BEHAVIOUR: false records nothing."""
    return bool(current_app.config["TRACK_BEHAVIOUR"])


def _encoded(kind: Fact, data: dict[str, Any]) -> str:
    return json.dumps({"kind": kind, "at": round(time.time(), 3), **data}, separators=(",", ":"))


def record(kind: Fact, **data: Any) -> None:
    """Push one fact now: {kind, at (epoch seconds), **data}. Never raises, never waits more
    than REDIS_TIMEOUT."""
    if enabled():
        _push(_encoded(kind, data))


def record_after_commit(kind: Fact, **data: Any) -> None:
    """In a unit of work: push the fact once it commits (a rolled-back change records nothing),
    stamped with the time it happened; a unit's facts go in one RPUSH."""
    if not enabled():
        return
    fact = _encoded(kind, data)
    if not in_unit_of_work():
        _push(fact, now=True)
        return
    state = uow_state()
    if "tracking" not in state:
        facts: list[str] = []
        state["tracking"] = facts
        after_commit(lambda: _push(*facts, now=True))
    state["tracking"].append(fact)


def _push(*facts: str, now: bool = False) -> None:
    """Gather `facts`; send the gathered ones when there are BATCH_FACTS, when the oldest is
    BATCH_SECONDS old, or `now` (after a commit: a purchase does not wait)."""
    state = _state()
    if state.redis is None:
        with state.lock:
            room = max(0, MAX_BUFFERED - len(state.buffer))
            state.buffer.extend(facts[:room])
            state.dropped += len(facts) - min(room, len(facts))
        return
    with state.lock:
        if not state.buffer:
            state.oldest = time.monotonic()
        state.buffer.extend(facts)
        due = now or len(state.buffer) >= BATCH_FACTS
        due = due or time.monotonic() - state.oldest >= BATCH_SECONDS
        if state.sender_pid != os.getpid():
            state.sender_pid = os.getpid()
            threading.Thread(
                target=_sender, args=(state,), name="shop-tracking", daemon=True
            ).start()
    if due:
        _send(state)


def _sender(state: _State) -> None:
    """Sends what waited BATCH_SECONDS, for a process with few facts to send."""
    while True:
        time.sleep(BATCH_SECONDS)
        if state.buffer and time.monotonic() - state.oldest >= BATCH_SECONDS:
            _send(state)


def _send(state: _State) -> None:
    with state.lock:
        facts = list(state.buffer)
        state.buffer.clear()
    if not facts or state.redis is None:
        return
    if time.monotonic() < state.down_until:
        state.dropped += len(facts)
        return
    try:
        pipe = state.redis.pipeline(transaction=False)
        pipe.rpush(FACTS, *facts)
        if state.dropped:
            pipe.incrby(DROPPED, state.dropped)
        pipe.execute()
        state.dropped = 0
    except (RedisError, OSError):
        state.down_until = time.monotonic() + RETRY_AFTER
        state.dropped += len(facts)
        log.warning("tracking: Redis unreachable, facts dropped for %s s", RETRY_AFTER)


def flush() -> None:
    """Send what this process gathered now (tests, a job about to read the list)."""
    _send(_state())


@dataclass(frozen=True)
class Batch:
    token: str | None  # None: the embedded buffer's (nothing to clear after commit)
    facts: list[dict[str, Any]]


def take(limit: int) -> Batch:
    """The next batch of at most `limit` facts, oldest first (the unfinished one, if a run
    died before clearing it). Raises RedisError when Redis is down."""
    connection = redis_connection()
    state = _state()
    if connection is None:
        with state.lock:
            raw = [state.buffer.popleft() for _ in range(min(limit, len(state.buffer)))]
        return Batch(None, [json.loads(fact) for fact in raw])
    _send(state)  # what this process gathered goes first
    token, raw = connection.eval(_TAKE, 3, FACTS, BATCH, BATCH_TOKEN, limit, str(uuid.uuid4()))
    return Batch(
        token.decode() if isinstance(token, bytes) else token, [json.loads(f) for f in raw]
    )


def done(batch: Batch) -> None:
    """Clear a batch whose facts are committed."""
    connection = redis_connection()
    if connection is not None and batch.token is not None:
        connection.eval(_DONE, 2, BATCH, BATCH_TOKEN, batch.token)


def take_dropped() -> int:
    """How many facts were dropped (every process's, as far as they could tell Redis) since
    last asked, and this process's not yet told."""
    state = _state()
    mine, state.dropped = state.dropped, 0
    connection = redis_connection()
    if connection is None:
        return mine
    told = connection.getdel(DROPPED)
    return mine + int(told or 0)


def pending() -> int:
    """Facts waiting to be written (the embedded buffer's, or Redis's list)."""
    connection = redis_connection()
    if connection is None:
        return len(_state().buffer)
    return int(connection.llen(FACTS))
