"""Cached GET responses, and cached values (list totals, search rankings), under versioned
namespaces: a write bumps its namespaces' versions after commit, so no client reads a stale
answer after a successful write, on any process. An entry may also end at a moment known when
it is written (`until`: a flash sale starting or ending), to the microsecond, whatever the
store's TTL granularity. A cache failure is a miss, never an error. Each domain names its own
namespaces (products.cache, reports.cache)."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, current_app, g, request
from werkzeug.http import quote_etag

from shop import edge, metrics, outbox, replica
from shop.db import after_commit, unit_of_work, uow_state
from shop.extensions import cache

log = logging.getLogger(__name__)


# A cache that failed is left alone this long (answers are read from the database), so that
# a hung Redis costs a process one short timeout, not one per request.
RETRY_AFTER = 5.0
_unhealthy_until = 0.0
# Bumps are skipped (owed at once) only this soon after a bump failed, not after a failed read:
# a Redis that answers again is told at once, so other processes read nothing stale.
_bumps_failed_until = 0.0
# Namespaces this process could not bump after a write. Until it has, it serves no cached
# answer: a Redis back from its own persistence holds what they invalidated. (Other processes
# are covered by an outbox message that bumps them once Redis answers: see bump.)
_unbumped: set[str] = set()
# A new version is the clock in microseconds, or one more than the last: it never goes back,
# even when Redis comes back from a persistence that predates the last bumps.
_BUMP = """
local version = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
if now <= version then now = version + 1 end
redis.call('SET', KEYS[1], now)
return now
"""


def _failed() -> None:
    global _unhealthy_until
    _unhealthy_until = time.monotonic() + RETRY_AFTER
    log.warning("cache unreachable; reading through for %s s", RETRY_AFTER, exc_info=True)


def _usable() -> bool:
    """Whether cached answers may be served now (re-bumping what this process owes first)."""
    if time.monotonic() < _unhealthy_until:
        return False
    if _unbumped:
        try:
            _bump(sorted(_unbumped))
        except Exception:
            _failed()
            return False
        _unbumped.clear()
    return True


def _seed_version(key: str) -> None:
    # A lost (evicted, flushed) version restarts from the clock, above any earlier value,
    # so entries cached under an old version are never served again.
    cache.add(key, time.time_ns() // 1000, timeout=0)


def _version(namespace: str) -> int:
    key = f"v:{namespace}"
    version = cache.get(key)
    if version is None:
        _seed_version(key)
        version = cache.get(key)
    return -1 if version is None else int(version)  # None: a NullCache


def _bump(namespaces: list[str]) -> None:
    """Move each namespace to a new version, or raise."""
    backend: Any = cache.cache
    client = getattr(backend, "_write_client", None)
    keys = [f"v:{namespace}" for namespace in namespaces]
    if client is None:  # in-process cache
        for key in keys:
            _seed_version(key)
            backend.inc(key)
        return
    pipe = client.pipeline(transaction=False)  # Redis: one round trip for them all
    for key in keys:
        pipe.eval(_BUMP, 1, backend.key_prefix + key, time.time_ns() // 1000)
    pipe.execute()


def bump(*namespaces: str) -> None:
    """Move each namespace to a new version: every entry cached under the old one is dead.

    When Redis cannot be told, the namespaces are owed: this process serves no cached answer
    until it has bumped them, and an outbox message bumps them for every other process as soon
    as Redis answers again."""
    global _bumps_failed_until
    if time.monotonic() >= _bumps_failed_until:  # else a bump just failed: not one more timeout
        try:
            _bump(sorted(namespaces))
            return
        except Exception:
            log.error("could not invalidate cache namespaces %s", namespaces, exc_info=True)
            _failed()
            _bumps_failed_until = _unhealthy_until
    _unbumped.update(namespaces)
    with unit_of_work():
        outbox.add(rebump, namespaces=sorted(namespaces))


def rebump(namespaces: list[str]) -> None:
    """The outbox task of a bump that failed: retried until Redis takes it."""
    _bump(namespaces)


def invalidate(*namespaces: str) -> None:
    """Bump the namespaces once the current unit of work commits (each once per unit)."""
    state = uow_state()
    if "invalidate" not in state:
        pending: set[str] = set()
        state["invalidate"] = pending
        after_commit(lambda: bump(*pending))
    state["invalidate"].update(namespaces)


def _read(namespaces: tuple[str, ...], key: str) -> tuple[Any, Any, float | None]:
    """The namespaces' versions, the value cached at `key` for them, and when that value ends
    (`until`), in one round trip.

    An entry holds (versions, value, end) under a key without the versions, so one MGET reads
    all. Version -1 means no cache (NullCache, or unreachable): read through, store nothing.
    """
    if not _usable():
        return -1, None, None
    try:
        *found, entry = cache.get_many(*(f"v:{namespace}" for namespace in namespaces), key)
        if any(version is None for version in found):
            found, entry = [_version(namespace) for namespace in namespaces], None
    except Exception:
        _failed()
        return -1, None, None
    if any(version is None or version == -1 for version in found):
        return -1, None, None
    versions = tuple(found)
    if entry is None or entry[0] != versions or (entry[2] is not None and time.time() >= entry[2]):
        return versions, None, None
    return versions, entry[1], entry[2]


def _counted(namespace: str, hit: bool) -> None:
    metrics.child(metrics.CACHE_HITS if hit else metrics.CACHE_MISSES, namespace).inc()


# When an entry stops being served (seconds since the epoch), or None: only by a write.
Until = Callable[[], float | None]


def _write(
    key: str,
    version: Any,
    value: Any,
    timeout: int,
    until: Until | None = None,
    *,
    size: int | None = None,
) -> tuple[bool, float | None]:
    """Store the value; whether it was stored, and when it ends. With `size` (an `http`
    answer's body length), its head too, in the same round trip (see _revalidated). What was
    read on the replica is not stored: it may predate the write that made this version
    (shop.replica)."""
    if version == -1 or replica.served() or time.monotonic() < _unhealthy_until:
        return False, None
    try:
        ends = until() if until is not None else None
        if ends is not None:
            timeout = max(1, min(timeout, int(ends - time.time()) + 1))
        entries = {key: (version, value, ends)}
        if size is not None:
            entries[_head(key)] = (version, ends, size)
        cache.set_many(entries, timeout=timeout)
    except Exception:
        _failed()
        return False, None
    return True, ends


def _head(key: str) -> str:
    # What an answer's ETag is made of, and its size, beside the entry: a revalidation reads
    # these few bytes, not the body.
    return f"head:{key}"


def _revalidated(namespaces: tuple[str, ...], key: str) -> Response | None:
    """The 304 for a request whose If-None-Match names the answer cached at `key`, read with
    the versions in one round trip and without the body; None when it is not one (no head,
    another version or tag, the cache away): the caller reads the entry."""
    if not _usable():
        return None
    try:
        *found, head = cache.get_many(*(f"v:{namespace}" for namespace in namespaces), _head(key))
    except Exception:
        _failed()
        return None
    if head is None or head[0] != tuple(found):
        return None
    versions, ends, size = head
    if ends is not None and time.time() >= ends:
        return None
    tag = _etag(key, versions, ends)
    if not _fresh(tag, size):
        return None
    _counted(namespaces[0], True)
    return _not_modified(tag, size)


def cached_value(
    namespace: str,
    key: str,
    compute: Callable[[], Any],
    timeout: int = 300,
    *,
    until: Until | None = None,
) -> Any:
    """`compute()`, cached under `key` until `namespace` is next invalidated (or `until()`)."""
    version, value, _ = _read((namespace,), f"{namespace}:{key}")
    _counted(namespace, value is not None)
    if value is None:
        value = compute()
        _write(f"{namespace}:{key}", version, value, timeout, until)
    return value


def cached_response(
    namespace: str,
    scope: Callable[[], str],
    timeout: int = 300,
    *,
    also: tuple[str, ...] = (),
    until: Until | None = None,
    http: bool = False,
) -> Any:
    """Cache a GET view's 200 answers under path, query string and `scope` (who may see what),
    until `namespace` (or any namespace of `also`) is next invalidated, or `until()`.

    `http=True` for answers anyone may read: they also carry a strong ETag (see `_etag`),
    `Cache-Control: public, max-age=CATALOG_MAX_AGE` when the caller sent no credentials
    (shop.edge sets `no-store` otherwise) and `Vary: Authorization`; an If-None-Match with the
    current tag is a 304, answered before the view when the answer is cached.

    `CACHE_RESPONSES = False` turns this layer off (debugging, benchmarks); `cached_value`
    entries such as list totals stay cached (an `http` answer is then tagged by its body).
    """

    def decorator(view: Any) -> Any:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_app.config["CACHE_RESPONSES"]:
                response = view(*args, **kwargs)
                return _conditional(response, None) if http else response
            query = "&".join(f"{k}={v}" for k, v in sorted(request.args.items(multi=True)))
            # An entry is the body and the Link header of a list's page.
            key = f"resp:{namespace}:{scope()}:{request.path}?{query}"
            if http and request.if_none_match:
                revalidated = _revalidated((namespace, *also), key)
                if revalidated is not None:
                    return revalidated
            version, entry, ends = _read((namespace, *also), key)
            _counted(namespace, entry is not None)
            if entry is not None:
                body, link = entry
                tag = _etag(key, version, ends) if http else None
                if tag is not None and _fresh(tag, len(body)):
                    return _not_modified(tag, len(body))
                cached = Response(body, status=200, mimetype="application/json")
                if link:
                    cached.headers["Link"] = link
                return _tagged(cached, tag) if tag is not None else cached
            response = view(*args, **kwargs)
            if isinstance(response, Response) and response.status_code == 200:
                body = response.get_data()
                size = len(body) if http else None
                stored, ends = _write(
                    key, version, (body, response.headers.get("Link")), timeout, until, size=size
                )
                if http:
                    return _conditional(response, _etag(key, version, ends) if stored else None)
            return response

        return wrapper

    return decorator


def _etag(key: str, versions: Any, ends: float | None) -> str:
    """A strong tag for the answer cached at `key` under `versions` until `ends`: it changes
    with every write that bumps one of its namespaces (at once, as the cache does) and at every
    `until` moment, and costs nothing to read (the versions come with the entry)."""
    return hashlib.blake2b(f"{key}|{versions}|{ends}".encode(), digest_size=12).hexdigest()


def _fresh(tag: str, size: int) -> bool:
    """Whether the client's If-None-Match names this answer as this request would get it."""
    return bool(request.if_none_match) and request.if_none_match.contains_weak(
        edge.encoded_etag(tag, size)
    )


def _public(response: Response, tag: str) -> Response:
    # add(), not [...] =: the view set none of these, and setting scans every header.
    headers = response.headers
    headers.add("ETag", quote_etag(tag))
    if not edge.credentialed():
        headers.add("Cache-Control", f"public, max-age={current_app.config['CATALOG_MAX_AGE']}")
    headers.add("Vary", "Authorization")
    return response


def _tagged(response: Response, tag: str) -> Response:
    g.compress_key = tag  # shop.edge keeps this body compressed under its tag
    return _public(response, tag)


def _not_modified(tag: str, size: int) -> Response:
    response = current_app.response_class(status=304)
    del response.headers["Content-Type"]
    return _public(response, edge.encoded_etag(tag, size))


def _conditional(response: Any, tag: str | None) -> Any:
    """An answer the view made: tagged (by its body when the versions could not be read),
    and a 304 when the client has it already."""
    if not isinstance(response, Response) or response.status_code != 200:
        return response
    body = response.get_data()
    tag = tag or hashlib.blake2b(body, digest_size=12).hexdigest()
    if _fresh(tag, len(body)):
        return _not_modified(tag, len(body))
    return _tagged(response, tag)
