"""Cached GET responses with versioned keys: a write bumps its namespace's version after
commit, so no client reads a stale answer after a successful write, on any process.
A cache failure is a miss, never an error."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial, wraps
from typing import Any

from flask import Response, request

from shop.db import after_commit, uow_state
from shop.extensions import cache

log = logging.getLogger(__name__)
CATALOG = "catalog"
REPORTS = "reports"


def _seed_version(key: str) -> None:
    # A lost (evicted, flushed) version restarts from the clock, above any earlier value,
    # so entries cached under an old version are never served again.
    cache.add(key, time.time_ns() // 1000, timeout=0)


def _version(namespace: str) -> int:
    key = f"v:{namespace}"
    try:
        version = cache.get(key)
        if version is None:
            _seed_version(key)
            version = cache.get(key)
        return -1 if version is None else int(version)  # None: a NullCache
    except Exception:
        log.warning("cache unreachable; reading through", exc_info=True)
        return -1


def bump(namespace: str) -> None:
    key = f"v:{namespace}"
    try:
        _seed_version(key)
        cache.cache.inc(key)
    except Exception:
        log.error("could not invalidate cache namespace %s", namespace, exc_info=True)


def invalidate(*namespaces: str) -> None:
    """Bump each namespace once the current unit of work commits (once per unit)."""
    state: set[str] = uow_state().setdefault("invalidate", set())
    for namespace in sorted(set(namespaces) - state):
        state.add(namespace)
        after_commit(partial(bump, namespace))


def cached_response(namespace: str, scope: Callable[[], str], timeout: int = 300) -> Any:
    """Cache a GET view's 200 answers under path, query string and `scope` (who may see what).

    An entry holds (version, body) under a key without the version, so one MGET reads both
    the namespace's version and the entry: a hit costs a single round trip.
    """
    version_key = f"v:{namespace}"

    def decorator(view: Any) -> Any:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            query = "&".join(f"{k}={v}" for k, v in sorted(request.args.items(multi=True)))
            key = f"r:{namespace}:{scope()}:{request.path}?{query}"
            try:
                version, entry = cache.get_many(version_key, key)
                if version is None:
                    version = _version(namespace)
            except Exception:
                log.warning("cache unreachable; reading through", exc_info=True)
                version, entry = -1, None
            if version == -1 or version is None:
                return view(*args, **kwargs)
            if entry is not None and entry[0] == version:
                return Response(entry[1], status=200, mimetype="application/json")
            response = view(*args, **kwargs)
            if isinstance(response, Response) and response.status_code == 200:
                try:
                    cache.set(key, (version, response.get_data()), timeout=timeout)
                except Exception:
                    log.warning("cache write failed", exc_info=True)
            return response

        return wrapper

    return decorator
