"""Background processes: `python worker.py` runs an RQ worker; `--scheduler` runs the one
scheduler (rq-scheduler), which syncs the periodic jobs and relays the outbox every tick.
Either serves its own metrics on METRICS_PORT when it is set (GET /metrics, under the web's
access rule)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue

from shop import create_app, metrics
from shop.db import db
from shop.queues import (
    DEFAULT_QUEUE,
    AppWorker,
    redis_connection,
    release_dead_scheduler_locks,
)
from shop.schedule import RelayingScheduler, sync

log = logging.getLogger("shop.worker")
# Short: jobs waiting for a Redis that is back wait at most this long for the worker.
MAX_BACKOFF = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scheduler", action="store_true", help="run the scheduler instead")
    parser.add_argument("--burst", action="store_true", help="worker: exit when queues are empty")
    args = parser.parse_args(argv)

    app = create_app()
    if app.config["METRICS_PORT"]:
        metrics.serve(app.config, app.config["METRICS_PORT"])
    with app.app_context():
        if redis_connection() is None:
            print(
                "REDIS_URL is not set: without Redis, jobs run inline in the web process.",
                file=sys.stderr,
            )
            return 2
        # Its own client: a worker blocks on Redis for long (the web's gives up in a second).
        connection = Redis.from_url(app.config["REDIS_URL"])
        # A forked child (RQ runs its scheduler of delayed retries in one) must not share
        # this process's database connections.
        engine = db.engine
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
        if args.scheduler:

            def run() -> None:
                scheduler = RelayingScheduler(
                    queue_name=DEFAULT_QUEUE,
                    connection=connection,
                    interval=app.config["SCHEDULER_INTERVAL"],
                )
                log.info("periodic jobs synced: %s", sync(scheduler))
                scheduler.run()

        else:

            def run() -> None:
                released = release_dead_scheduler_locks(connection, [DEFAULT_QUEUE])
                if released:
                    log.warning("took over the retry scheduling of a dead worker: %s", released)
                queue = Queue(DEFAULT_QUEUE, connection=connection)
                # with_scheduler: RQ's own registry runs the delayed retries of failed jobs.
                AppWorker([queue], connection=connection, app=app).work(
                    burst=args.burst, with_scheduler=True
                )

        outlast_redis(run)
    return 0


def outlast_redis(run: Callable[[], None]) -> None:
    """Run `run` until it returns; while Redis is unreachable, start it again with backoff
    (1 s doubling to MAX_BACKOFF), so a bare process survives a Redis restart."""
    delay = 1.0
    while True:
        try:
            run()
            return
        except (RedisConnectionError, RedisTimeoutError) as error:
            log.warning("Redis unreachable (%s); starting again in %.0f s", error, delay)
            time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)


if __name__ == "__main__":
    sys.exit(main())
