"""Redis connection, RQ queues, and the workers that give every job an app context."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry, SimpleWorker, get_current_job
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.scripts import release_lock

from shop import metrics
from shop.db import db

log = logging.getLogger(__name__)
DEFAULT_QUEUE = "default"
MAINTENANCE_INTERVAL = 30
# A Redis that refused a hand-over is not asked again by this process for this long: jobs
# wait for the outbox relay instead, so a hung Redis costs a process one short timeout, not
# one per request.
RETRY_AFTER = 5.0
_down_until = 0.0


def redis_connection() -> Redis | None:
    """The app's Redis client, or None on the embedded default (jobs then run inline)."""
    return current_app.extensions.get("redis")


def init_redis(app: Flask) -> None:
    if app.config["REDIS_URL"]:
        # from_url opens no connection until the first command. Short timeouts: a hung Redis
        # fails a hand-over (the relay sends it later) instead of hanging the request.
        timeout = app.config["REDIS_TIMEOUT"]
        app.extensions["redis"] = Redis.from_url(
            app.config["REDIS_URL"], socket_timeout=timeout, socket_connect_timeout=timeout
        )


def handing_over() -> bool:
    """Whether jobs go to RQ now: not on the embedded default, nor while Redis is down."""
    return redis_connection() is not None and time.monotonic() >= _down_until


def enqueue(
    func: Callable[..., Any], *args: Any, job_id: str | None = None, timeout: int | None = None
) -> None:
    """Queue `func(*args)`, retried at JOB_RETRY_INTERVALS; `timeout` (seconds) overrides RQ's
    limit on one run (180 s)."""
    global _down_until
    connection = redis_connection()
    if connection is None:
        raise RuntimeError("enqueue needs REDIS_URL; the outbox runs jobs inline without it")
    intervals = current_app.config["JOB_RETRY_INTERVALS"]
    try:
        Queue(DEFAULT_QUEUE, connection=connection).enqueue(
            func,
            *args,
            job_id=job_id,
            job_timeout=timeout,
            retry=Retry(max=len(intervals), interval=intervals),
        )
    except (RedisError, OSError):
        _down_until = time.monotonic() + RETRY_AFTER
        raise
    metrics.child(metrics.JOBS_QUEUED, DEFAULT_QUEUE).inc()


def publish(channel: str) -> None:
    """Best effort: a pub/sub wake-up on `channel`, unless Redis is away (then, and when this
    fails, it is skipped: its listeners read on at their next poll anyway)."""
    global _down_until
    connection = redis_connection()
    if connection is None or not handing_over():
        return
    try:
        connection.publish(channel, b"")
    except (RedisError, OSError):
        _down_until = time.monotonic() + RETRY_AFTER
        log.warning("could not publish on %s; its listeners poll", channel)


class AppWorker(SimpleWorker):
    """Runs each job in an app context in its own process, with the app's pools and compiled
    statements kept from job to job. RQ's default worker forks a work horse per job instead:
    measured here, that costs 40-55 ms a job (a new PostgreSQL connection and server backend,
    the mappers and statements compiled again in every child), some 15 emails a second against
    about 100 this way. A job's timeout still holds (SIGALRM in this process). A job cut short
    by the process dying is retried by RQ once its lease in the started registry is over, and
    the outbox relays what it had handed over. Its maintenance (which also takes over RQ's
    scheduler of delayed retries when no live worker holds it) runs every 30 s, not every 10
    minutes."""

    def __init__(self, *args: Any, app: Flask, **kwargs: Any) -> None:
        super().__init__(*args, **{"maintenance_interval": MAINTENANCE_INTERVAL, **kwargs})
        self.app = app

    def perform_job(self, job: Any, queue: Queue) -> bool:
        metrics.child(metrics.JOBS_STARTED, queue.name).inc()
        performed = False
        with self.app.app_context():
            try:
                performed = super().perform_job(job, queue)
                return performed
            finally:
                db.session.remove()
                if not performed:
                    metrics.child(metrics.JOBS_FAILED, queue.name).inc()


def _is_dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True  # no such process
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return state in ("Z", "X")  # a zombie nobody reaped is dead too


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def release_dead_scheduler_locks(connection: Redis, queue_names: list[str]) -> list[str]:
    """Release the lock of RQ's scheduler (it moves delayed retries back into their queue)
    for each queue whose holder was a process of this host that has died (kill -9, OOM):
    otherwise the lock outlives it by a minute, and a restarted worker schedules nothing
    until its next maintenance."""
    released = []
    for name in queue_names:
        key = RQScheduler.get_locking_key(name)
        raw_owner = connection.get(key)
        if raw_owner is None:
            continue
        owner = _text(raw_owner)
        holder = {
            _text(k): _text(v)
            for k, v in connection.hgetall(SCHEDULER_KEY_TEMPLATE % owner).items()
        }
        pid = int(holder.get("pid") or 0)
        if holder.get("hostname") != socket.gethostname() or not pid:
            continue  # another host's, or not yet started: its lock's TTL decides
        if _is_dead(pid) and release_lock(connection, key, owner):
            released.append(name)
    return released


class JobIdFilter(logging.Filter):
    """Stamps log records with the id of the RQ job being run, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = get_current_job()
        record.job_id = job.id if job else None
        return True
