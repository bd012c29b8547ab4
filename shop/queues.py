"""Redis connection, RQ queues, and the workers that give every job an app context."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app
from redis import Redis
from rq import Queue, Retry, SimpleWorker, Worker, get_current_job

from shop.db import db

DEFAULT_QUEUE = "default"


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


def enqueue(func: Callable[..., Any], *args: Any, job_id: str | None = None) -> None:
    connection = redis_connection()
    if connection is None:
        raise RuntimeError("enqueue needs REDIS_URL; the outbox runs jobs inline without it")
    intervals = current_app.config["JOB_RETRY_INTERVALS"]
    Queue(DEFAULT_QUEUE, connection=connection).enqueue(
        func, *args, job_id=job_id, retry=Retry(max=len(intervals), interval=intervals)
    )


class _AppContextMixin:
    app: Flask

    def perform_job(self, job: Any, queue: Queue) -> bool:
        with self.app.app_context():
            try:
                performed: bool = super().perform_job(job, queue)  # type: ignore[misc]
                return performed
            finally:
                db.session.remove()


class AppWorker(_AppContextMixin, Worker):
    """Forks a work horse per job (production)."""

    def __init__(self, *args: Any, app: Flask, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = app


class AppSimpleWorker(_AppContextMixin, SimpleWorker):
    """Runs jobs in its own process (tests, platforms without fork)."""

    def __init__(self, *args: Any, app: Flask, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = app


class JobIdFilter(logging.Filter):
    """Stamps log records with the id of the RQ job being run, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = get_current_job()
        record.job_id = job.id if job else None
        return True
