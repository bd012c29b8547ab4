"""Prometheus metrics: what every process counts, the request hooks (with the slow-request
log), the access rule of every metrics endpoint, and the registry a scrape reads.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR is set before any worker imports this module
(gunicorn.conf.py): each worker then writes its values to memory-mapped files there and a
scrape, whichever worker answers it, reads them all (prometheus_client's multiprocess mode).
Without it (the development server, tests, the worker and the scheduler) the process's own
registry is read. The worker, the scheduler (`serve`, on METRICS_PORT) and the realtime
service (on its own port) each serve their own figures."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from operator import itemgetter
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Flask, Response, current_app, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)
slow_log = logging.getLogger("shop.slow")
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
UNMATCHED = "unmatched"  # the route label of a request no URL rule matched
# The method label; any other method a client makes up is "other" (labels stay bounded).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SLOWEST = 3  # statements a slow request's log line shows
SQL_CHARS = 300  # of each, whitespace collapsed

REQUESTS = Counter("shop_http_requests", "HTTP requests answered", ["route", "method", "status"])
DURATION = Histogram(
    "shop_http_request_duration_seconds",
    "Time to answer a request, by URL rule",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STATEMENTS = Histogram(
    "shop_db_statements_per_request",
    "SQL statements a request sent",
    ["route"],
    buckets=(0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144),
)
CACHE_HITS = Counter("shop_cache_hits", "Cached answers and values served", ["namespace"])
CACHE_MISSES = Counter("shop_cache_misses", "Cache reads that found nothing usable", ["namespace"])
JOBS_QUEUED = Counter("shop_jobs_queued", "Jobs handed to RQ", ["queue"])
JOBS_STARTED = Counter("shop_jobs_started", "Jobs a worker started", ["queue"])
JOBS_FAILED = Counter("shop_jobs_failed", "Jobs that raised (each attempt)", ["queue"])
WEBHOOK_DELIVERIES = Counter(
    "shop_webhook_deliveries",
    "Webhook delivery attempts by outcome: succeeded, retrying, failed (given up)",
    ["status"],
)
WEBSOCKET_CONNECTIONS = Gauge(
    "shop_websocket_connections", "Open WebSocket connections", multiprocess_mode="livesum"
)
ORDERS_CREATED = Counter("shop_orders_created", "Orders placed (committed)")
REPLICA_READS = Counter(
    "shop_replica_reads", "Views that may read the replica (shop.replica), by server", ["server"]
)

# The statements of the request being answered (on flask.g, made at its first): (seconds, SQL).
STATEMENTS_KEY = "shop_statements"
_children: dict[tuple[Any, ...], Any] = {}
# A request's three children by (route, method, status): one lookup a request, not three.
_request_children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}


def child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, looked up once per process (labels() validates each time)."""
    key = (metric, *labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


# --- requests -------------------------------------------------------------------------------


def _before_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if context is not None and has_request_context():
        context._shop_started = time.perf_counter()


def _after_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    started = getattr(context, "_shop_started", None)
    if started is not None and has_request_context():
        g.setdefault(STATEMENTS_KEY, []).append((time.perf_counter() - started, statement))


def _finish(response: Response) -> Response:
    here = g._get_current_object()  # the proxies once: each use is a context lookup
    started = here.get("started")  # shop.observability's, the first thing a request does
    if started is None:
        return response
    seconds = time.perf_counter() - started
    timings: list[tuple[float, str]] = here.get(STATEMENTS_KEY, [])
    req = request._get_current_object()  # type: ignore[attr-defined]
    rule = req.url_rule
    route = rule.rule if rule is not None else UNMATCHED
    method = req.method if req.method in METHODS else "other"
    status = response.status_code
    children = _request_children.get((route, method, status))
    if children is None:
        children = _request_children[route, method, status] = (
            child(REQUESTS, route, method, str(status)),
            child(DURATION, route, method),
            child(STATEMENTS, route),
        )
    requests, duration, statements = children
    requests.inc()
    duration.observe(seconds)
    statements.observe(len(timings))
    if seconds * 1000 > current_app.config["SLOW_REQUEST_MS"]:
        _log_slow(route, status, seconds, timings)
    return response


def _log_slow(route: str, status: int, seconds: float, timings: list[tuple[float, str]]) -> None:
    slowest = sorted(timings, key=itemgetter(0), reverse=True)[:SLOWEST]
    slow_log.warning(
        "slow request: %s %s took %.0f ms, %d statements",
        request.method,
        request.path,
        seconds * 1000,
        len(timings),
        extra={
            "method": request.method,
            "path": request.path,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "statements": len(timings),
            "slowest": [
                {"ms": round(took * 1000, 2), "sql": " ".join(sql.split())[:SQL_CHARS]}
                for took, sql in slowest
            ],
        },
    )


def init_app(app: Flask) -> None:
    """Count every request of `app` (unless METRICS_ENABLED is false) and log the slow ones."""
    if not app.config["METRICS_ENABLED"]:
        return
    if not event.contains(Engine, "before_cursor_execute", _before_cursor_execute):
        event.listen(Engine, "before_cursor_execute", _before_cursor_execute)
        event.listen(Engine, "after_cursor_execute", _after_cursor_execute)
    app.after_request(_finish)


# --- who may read them ----------------------------------------------------------------------


def allowed(address: str | None, authorization: str | None, config: Any) -> bool:
    """Whether a scrape from `address` carrying `authorization` may read the metrics: from
    METRICS_ALLOW_FROM, or with `Bearer METRICS_TOKEN` (compared in constant time)."""
    token = config["METRICS_TOKEN"]
    if token and authorization:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), token.encode()
        ):
            return True
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in config["METRICS_ALLOW_FROM"])


# --- what a scrape reads --------------------------------------------------------------------


def registry() -> Collector:
    """Every worker's figures (multiprocess mode), or this process's."""
    if not MULTIPROCESS:
        return REGISTRY
    merged = CollectorRegistry()
    MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
    return merged


def exposition(*collectors: Collector) -> bytes:
    """The text format of the figures, then of `collectors` (read at scrape: gauges of what
    the database or Redis hold now)."""
    extra = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        extra.register(collector)
    return generate_latest(registry()) + generate_latest(extra)


CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what generate_latest writes


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # no line per scrape
        pass


def serve(config: Any, port: int) -> WSGIServer:
    """Serve this process's metrics on `port` (all interfaces) in a thread, under the same
    access rule as the web's /metrics; `python worker.py` and the scheduler call it."""
    metrics = make_wsgi_app(registry())

    def guarded(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/metrics" and allowed(
            environ.get("REMOTE_ADDR"), environ.get("HTTP_AUTHORIZATION"), config
        ):
            answer: Iterable[bytes] = metrics(environ, start)
            return answer
        start("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not Found\n"]

    server = make_server("", port, guarded, _Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="shop-metrics", daemon=True).start()
    log.info("metrics on port %s", port)
    return server
