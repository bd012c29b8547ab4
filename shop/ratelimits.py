"""API-wide rate limits: every request under /api counts against RATE_LIMIT_USER for its user
(the token's subject, its signature checked, no query) or, without a valid token, against
RATE_LIMIT_ANON for its client address (behind TRUSTED_PROXIES proxies). Each answer says where
its caller stands (`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` in seconds); past
the limit it is a 429 with `Retry-After`. Provider webhooks and CORS preflights are not counted,
nor anything outside /api (health, metrics, the docs and the OpenAPI document).

The limits are flask-limiter's (its limit strings, its storage `RATELIMIT_STORAGE_URI`, the
`limits` library it is built on, whose MemoryStorage is its in-memory fallback) but not its
request hooks, which doubled the time of a cached catalog answer: here a request costs one Redis
command. Windows are fixed and aligned to the clock, so one INCR gives both the count and the
reset (EXPIRE follows on a window's first hit only). While Redis does not answer (within a
fifth of REDIS_TIMEOUT) the counts go on in this process's memory for a few seconds, as with
flask-limiter's fallback. flask-limiter itself keeps the limits of particular routes (login,
codes, guest carts)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import cast

from flask import Config, Flask, Response, current_app, g, request
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from redis import Redis, RedisError
from werkzeug.exceptions import TooManyRequests

from shop.config import ConfigError

log = logging.getLogger(__name__)
EXTENSION = "shop.ratelimits"
# A storage that failed is left alone this long (counts are kept in memory meanwhile).
RETRY_AFTER = 5.0
HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


class RedisCounts:
    """Counts on Redis, one command a hit (`limits`' RedisStorage spends a script on each)."""

    base_exceptions = RedisError

    def __init__(self, client: Redis) -> None:
        self.client = client

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        count = int(self.client.incr(key, amount))
        if count == amount:  # the window's first hit
            self.client.expire(key, expiry)
        return count


@dataclass
class Limits:
    anonymous: RateLimitItem
    user: RateLimitItem
    storage: RedisCounts | Storage
    fallback: Storage
    prefix: str
    down_until: float = 0.0


def init_app(app: Flask) -> None:
    config = app.config
    uri = config["RATELIMIT_STORAGE_URI"]
    storage: RedisCounts | Storage
    if uri.startswith(("redis://", "rediss://", "unix://")):
        # A count is one INCR: a Redis slower than this is treated as down, not waited for.
        timeout = config["REDIS_TIMEOUT"] / 5
        client = Redis.from_url(uri, socket_timeout=timeout, socket_connect_timeout=timeout)
        storage = RedisCounts(client)
    else:  # memory://, or another storage of `limits`
        storage = cast(Storage, storage_from_string(uri))
    app.extensions[EXTENSION] = Limits(
        anonymous=_limit(config, "RATE_LIMIT_ANON"),
        user=_limit(config, "RATE_LIMIT_USER"),
        storage=storage,
        fallback=storage if isinstance(storage, MemoryStorage) else MemoryStorage(),
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


def _limited() -> bool:
    path = request.path
    return (
        path.startswith("/api/") and request.method != "OPTIONS" and not path.endswith("/webhook")
    )


def _caller(limits: Limits) -> tuple[str, RateLimitItem]:
    """Who the request counts against: the token's user, else the client address."""
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        try:
            claims = decode_token(authorization[7:].strip())
        except (PyJWTError, JWTExtendedException, ValueError):
            pass  # counted by address; the view answers 401
        else:
            return f"user:{claims[current_app.config['JWT_IDENTITY_CLAIM']]}", limits.user
    return f"ip:{request.remote_addr or 'unknown'}", limits.anonymous


def _hit(limits: Limits, key: str, expiry: int) -> int:
    if time.monotonic() >= limits.down_until:
        try:
            return limits.storage.incr(key, expiry)
        except limits.storage.base_exceptions:
            log.warning("rate-limit storage unreachable; counting in memory for %s s", RETRY_AFTER)
            limits.down_until = time.monotonic() + RETRY_AFTER
    return limits.fallback.incr(key, expiry)


def _count() -> None:
    if not _limited():
        return
    limits: Limits = current_app.extensions[EXTENSION]
    who, item = _caller(limits)
    window = item.get_expiry()
    now = time.time()
    start = int(now // window) * window
    # The window's start in the key: its count restarts at the next one.
    count = _hit(limits, f"{limits.prefix}:{item.amount}/{window}:{who}:{start}", window + 1)
    g.rate_limit = (item.amount, max(0, item.amount - count), start + window)
    if count > item.amount:
        wait = max(1, math.ceil(start + window - now))
        raise TooManyRequests(
            f"Too many requests: at most {item.amount} per {window} s for this client; "
            f"retry in {wait} s.",
            retry_after=wait,
        )


def _headers(response: Response) -> Response:
    counted = g.get("rate_limit")
    if counted is not None:
        amount, remaining, reset = counted
        limit, left, resets = HEADERS
        headers = response.headers
        headers.add(limit, str(amount))
        headers.add(left, str(remaining))
        headers.add(resets, str(max(1, math.ceil(reset - time.time()))))
    return response
