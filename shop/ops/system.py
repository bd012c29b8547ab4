"""GET /admin/system: the state of the database, Redis, the queues and their workers, the
scheduler, the outbox and the answering process, each part read on its own. A part whose
source does not answer says so (`status: unavailable` and the error), and the rest is still
answered: the page operators open when something is wrong must not fail with it."""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import current_app
from redis import Redis
from rq import Worker
from rq_scheduler import Scheduler
from sqlalchemy import text

from shop.db import db, is_postgres, utcnow
from shop.ops.scrape import outbox_backlog, queue_counts
from shop.queues import redis_connection
from shop.schedule import JOB_ID_PREFIX, JOBS, LAST_TICK_KEY

log = logging.getLogger(__name__)
OK, UNAVAILABLE, NOT_CONFIGURED = "ok", "unavailable", "not configured"
_STARTED = time.time()  # roughly when this process began serving (the app was imported)


class NotConfigured(Exception):
    """The part's dependency is not part of this deployment (no REDIS_URL)."""


def system_status() -> dict[str, Any]:
    """Every part, each degraded on its own when its source fails."""
    return {
        "checked_at": utcnow(),
        "database": _part("database", _database),
        "redis": _part("redis", _redis),
        "queues": _part("queues", _queues),
        "scheduler": _part("scheduler", _scheduler),
        "outbox": _part("outbox", outbox_backlog),
        "process": _process(),
    }


def _part(name: str, read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return {"status": OK, **read()}
    except NotConfigured as why:
        return {"status": NOT_CONFIGURED, "error": str(why)}
    except Exception as error:
        db.session.rollback()
        log.warning("system view: %s unavailable", name, exc_info=True)
        return {"status": UNAVAILABLE, "error": f"{type(error).__name__}: {error}"[:500]}


def _database() -> dict[str, Any]:
    if is_postgres():
        version, size = db.session.execute(
            text("SELECT current_setting('server_version'), pg_database_size(current_database())")
        ).one()
        version = f"PostgreSQL {version}"
    else:
        version = "SQLite " + db.session.scalar(text("SELECT sqlite_version()"))
        pages = db.session.scalar(text("PRAGMA page_count"))
        size = pages * db.session.scalar(text("PRAGMA page_size"))
    db.session.rollback()  # end the read: this view holds no transaction open
    return {"version": version, "size_bytes": size, "pool": _pool()}


def _pool() -> dict[str, Any]:
    """This process's connection pool (a gunicorn worker's own)."""
    pool: Any = db.engine.pool
    figures = {"status": pool.status()}
    for name in ("size", "checkedin", "checkedout", "overflow"):
        method = getattr(pool, name, None)
        if callable(method):
            figures[name] = method()
    return figures


def _connection() -> Redis:
    connection = redis_connection()
    if connection is None:
        raise NotConfigured("REDIS_URL is not set: jobs run inline in the web process.")
    return connection


def _redis() -> dict[str, Any]:
    info = _connection().info()
    return {
        "version": info.get("redis_version"),
        "used_memory_bytes": info.get("used_memory"),
        "used_memory_human": info.get("used_memory_human"),
        "maxmemory_bytes": info.get("maxmemory"),
        "connected_clients": info.get("connected_clients"),
        "uptime_seconds": info.get("uptime_in_seconds"),
    }


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC)


def _queues() -> dict[str, Any]:
    connection = _connection()
    workers = [
        {
            "name": worker.name,
            "state": getattr(worker.get_state(), "value", str(worker.get_state())),
            "queues": worker.queue_names(),
            "last_heartbeat": _moment(worker.last_heartbeat),
            "birth": _moment(worker.birth_date),
            "current_job_id": worker.get_current_job_id(),
        }
        for worker in Worker.all(connection=connection)
    ]
    return {
        "queues": queue_counts(connection, current_app.config["RQ_QUEUES"]),
        "workers": sorted(workers, key=lambda w: w["name"]),
    }


def _scheduler() -> dict[str, Any]:
    connection = _connection()
    pipe = connection.pipeline(transaction=False)
    pipe.hgetall(Scheduler.scheduler_key)
    pipe.get(LAST_TICK_KEY)
    pipe.zrange(Scheduler.scheduled_jobs_key, 0, -1, withscores=True)
    holder, last_tick, scheduled = pipe.execute()
    next_runs = {
        (job_id.decode() if isinstance(job_id, bytes) else job_id): score
        for job_id, score in scheduled
    }
    running = bool(holder) and b"death" not in holder
    return {
        "running": running,
        "since": _moment(holder.get(b"birth")) if running else None,
        "last_tick": _moment(last_tick),
        "jobs": [
            {
                "name": job.name,
                "cron": job.cron,
                "next_run": _moment(next_runs.get(JOB_ID_PREFIX + job.name)),
            }
            for job in JOBS
        ],
    }


def _rss_bytes() -> int | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _process() -> dict[str, Any]:
    """The process that answered (one gunicorn worker of several): CPU time, memory."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "status": OK,
        "pid": os.getpid(),
        "uptime_seconds": round(time.time() - _STARTED, 1),
        "cpu_user_seconds": round(usage.ru_utime, 3),
        "cpu_system_seconds": round(usage.ru_stime, 3),
        "rss_bytes": _rss_bytes(),
        "max_rss_bytes": usage.ru_maxrss * 1024,  # KiB on Linux
        "threads": threading.active_count(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
    }
