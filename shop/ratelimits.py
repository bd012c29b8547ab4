"""API-wide rate limits: every request under /api counts against RATE_LIMIT_USER for its user
(the token's subject, its signature checked, no query) or, without a valid token, against
RATE_LIMIT_ANON for its client address (behind TRUSTED_PROXIES proxies). Each answer says where
its caller stands (`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` in seconds); past
the limit it is a 429 with `Retry-After`. Provider webhooks and CORS preflights are not counted,
nor anything outside /api (health, metrics, the docs and the OpenAPI document).

Windows are fixed and aligned to the clock (a count's key names its window). Each process counts
its hits in memory and, every SYNC_SECONDS, adds them to Redis in one pipelined round trip for
all its callers, reading each total back: a caller is judged on the total Redis had at the last
sync plus this process's hits since, so one process counts exactly and a caller spread over P
processes may pass the limit by what it sent them in one interval. A request therefore costs no
Redis round trip of its own (one per interval per process). While Redis does not answer (within
a tenth of REDIS_TIMEOUT: a Redis taken for down when it is only slow costs a later sync, no
count) the counts go on in memory, Redis is tried again RETRY_AFTER seconds later and then told
what it missed; without Redis (`RATELIMIT_STORAGE_URI=memory://`) they are only in memory.

The limit strings, the storage and its key prefix are flask-limiter's settings (parsed with the
`limits` library it is built on); its own request hooks are not used here: on every request they
doubled the time of a cached catalog answer, and its storage is one Redis round trip (two for the
headers) a request. flask-limiter keeps the limits of particular routes (login, codes, carts)."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field

from flask import Config, Flask, Request, Response, current_app, g, request
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from limits import RateLimitItem, parse
from redis import Redis, RedisError
from werkzeug.exceptions import TooManyRequests

from shop.config import ConfigError

log = logging.getLogger(__name__)
EXTENSION = "shop.ratelimits"
HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
# How often a process adds its counts to Redis and reads the totals back.
SYNC_SECONDS = 0.1
# A Redis that failed is left alone this long (counts are kept in memory meanwhile).
RETRY_AFTER = 5.0


@dataclass
class Counts:
    """One process's counts: what Redis said at the last sync, and the hits since."""

    redis: Redis | None
    known: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    ends: dict[str, int] = field(default_factory=dict)  # when each key's window ends
    synced_at: float = 0.0
    down_until: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, key: str, ends: int) -> int:
        """Count one hit on `key`; the caller's count so far."""
        with self.lock:
            self.pending[key] = self.pending.get(key, 0) + 1
            self.ends[key] = ends
            now = time.monotonic()
            due = now - self.synced_at >= SYNC_SECONDS
            if due:
                self.synced_at = now  # this request syncs, the others go on meanwhile
        if due:
            self.sync()
        with self.lock:
            return self.known.get(key, 0) + self.pending.get(key, 0)

    def sync(self) -> None:
        """Add the hits since the last sync to Redis and read the totals back. While Redis is
        unset or down they stay counted here (and are sent once it answers again)."""
        with self.lock:
            self._forget_ended()
            if self.redis is None:
                for key, hits in self.pending.items():
                    self.known[key] = self.known.get(key, 0) + hits
                self.pending = {}
                return
            if not self.pending or time.monotonic() < self.down_until:
                return
            sent, self.pending = self.pending, {}
            for key, hits in sent.items():  # counted meanwhile as if Redis had them
                self.known[key] = self.known.get(key, 0) + hits
        totals = self._send(self.redis, sent)
        with self.lock:
            for key, hits in sent.items():
                if totals is not None:
                    self.known[key] = totals[key]
                elif key in self.ends:  # not sent: again next time
                    self.known[key] -= hits
                    self.pending[key] = self.pending.get(key, 0) + hits

    def _send(self, redis: Redis, sent: dict[str, int]) -> dict[str, int] | None:
        """Add the hits to Redis; the totals, or None when it does not answer."""
        try:
            pipe = redis.pipeline(transaction=False)
            for key, hits in sent.items():
                pipe.incrby(key, hits)
                pipe.expireat(key, self.ends.get(key, int(time.time())) + 1)
            replies = pipe.execute()
        except RedisError:
            log.warning("rate-limit storage unreachable; counting in memory for %s s", RETRY_AFTER)
            self.down_until = time.monotonic() + RETRY_AFTER
            return None
        return {key: int(total) for key, total in zip(sent, replies[::2], strict=True)}

    def _forget_ended(self) -> None:
        now = time.time()
        for key in [key for key, ends in self.ends.items() if ends <= now]:
            del self.ends[key]
            self.known.pop(key, None)
            self.pending.pop(key, None)


@dataclass
class Limits:
    anonymous: RateLimitItem
    user: RateLimitItem
    counts: Counts
    prefix: str


def init_app(app: Flask) -> None:
    config = app.config
    uri = config["RATELIMIT_STORAGE_URI"]
    redis = None
    if uri.startswith(("redis://", "rediss://", "unix://")):
        # A sync is one round trip: a Redis slower than this is treated as down, not waited for.
        timeout = config["REDIS_TIMEOUT"] / 10
        redis = Redis.from_url(uri, socket_timeout=timeout, socket_connect_timeout=timeout)
    elif not uri.startswith("memory://"):
        raise ConfigError("RATELIMIT_STORAGE_URI is redis://, rediss://, unix:// or memory://.")
    app.extensions[EXTENSION] = Limits(
        anonymous=_limit(config, "RATE_LIMIT_ANON"),
        user=_limit(config, "RATE_LIMIT_USER"),
        counts=Counts(redis),
        prefix=f"{config['RATELIMIT_KEY_PREFIX']}:api",
    )
    app.before_request(_count)
    app.after_request(_headers)


def _limit(config: Config, name: str) -> RateLimitItem:
    try:
        return parse(config[name])
    except ValueError:
        raise ConfigError(
            f"{name} is a limit such as '300 per minute', not {config[name]!r}."
        ) from None


def _limited(req: Request) -> bool:
    path = req.path
    return path.startswith("/api/") and req.method != "OPTIONS" and not path.endswith("/webhook")


def _caller(req: Request, limits: Limits) -> tuple[str, RateLimitItem]:
    """Who the request counts against: the token's user, else the client address."""
    authorization = req.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        try:
            claims = decode_token(authorization[7:].strip())
        except (PyJWTError, JWTExtendedException, ValueError):
            pass  # counted by address; the view answers 401
        else:
            return f"user:{claims[current_app.config['JWT_IDENTITY_CLAIM']]}", limits.user
    return f"ip:{req.remote_addr or 'unknown'}", limits.anonymous


def _count() -> None:
    # The request and the app once: each use of the proxies costs a context lookup.
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    if not _limited(req):
        return
    limits: Limits = current_app._get_current_object().extensions[EXTENSION]  # type: ignore[attr-defined]
    who, item = _caller(req, limits)
    window = item.get_expiry()
    now = time.time()
    start = int(now // window) * window
    ends = start + window
    count = limits.counts.hit(f"{limits.prefix}:{item.amount}/{window}:{who}:{start}", ends)
    g.rate_limit = (item.amount, max(0, item.amount - count), ends)
    if count > item.amount:
        wait = max(1, math.ceil(ends - now))
        raise TooManyRequests(
            f"Too many requests: at most {item.amount} per {window} s for this client; "
            f"retry in {wait} s.",
            retry_after=wait,
        )


def _headers(response: Response) -> Response:
    counted = g.get("rate_limit")
    if counted is not None:
        amount, remaining, ends = counted
        limit, left, resets = HEADERS
        headers = response.headers  # add(), not [...] =: setting scans every header
        headers.add(limit, str(amount))
        headers.add(left, str(remaining))
        headers.add(resets, str(max(1, math.ceil(ends - time.time()))))
    return response
