"""What a scrape of /metrics reads at its moment, beside the counters: the outbox's backlog
(one query) and the depth of each RQ queue (one Redis round trip). A source that does not
answer leaves its gauges out and sets `shop_scrape_ok{source}` to 0; the scrape still works."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from flask import current_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from rq import Queue
from sqlalchemy import func, select

from shop.db import db, utcnow
from shop.outbox import MAX_ATTEMPTS, OutboxMessage
from shop.queues import redis_connection

log = logging.getLogger(__name__)
# The registries of a queue, as RQ names them, and the figure each gives.
REGISTRIES = ("started", "scheduled", "failed")


def outbox_backlog() -> dict[str, Any]:
    """The outbox's messages waiting, the oldest one's time, and how many the relay gave up
    on (MAX_ATTEMPTS failed): one statement."""
    waiting, oldest, given_up = db.session.execute(
        select(
            func.count(),
            func.min(OutboxMessage.created_at),
            func.count().filter(OutboxMessage.attempts >= MAX_ATTEMPTS),
        )
    ).one()
    return {"backlog": waiting, "oldest_created_at": oldest, "given_up": given_up}


def queue_counts(connection: Redis, names: list[str]) -> list[dict[str, Any]]:
    """Each queue's jobs waiting, running, scheduled (retries, delays) and failed."""
    pipe = connection.pipeline(transaction=False)
    for name in names:
        queue = Queue(name, connection=connection)
        pipe.llen(queue.key)
        pipe.zcard(queue.started_job_registry.key)
        pipe.zcard(queue.scheduled_job_registry.key)
        pipe.zcard(queue.failed_job_registry.key)
    figures = pipe.execute()
    return [
        {
            "name": name,
            "depth": figures[4 * i],
            **dict(zip(REGISTRIES, figures[4 * i + 1 : 4 * i + 4], strict=True)),
        }
        for i, name in enumerate(names)
    ]


def _age(oldest: datetime | None) -> float:
    return 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())


class Gauges(Collector):
    """The scrape-time gauges; built per scrape, in the request's app context."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ok = GaugeMetricFamily(
            "shop_scrape_ok", "1 when this scrape could read the source", labels=["source"]
        )
        try:
            outbox = outbox_backlog()
        except Exception:
            db.session.rollback()
            log.warning("metrics: could not read the outbox", exc_info=True)
            ok.add_metric(["database"], 0)
        else:
            ok.add_metric(["database"], 1)
            yield GaugeMetricFamily(
                "shop_outbox_backlog", "Outbox messages not yet handled", value=outbox["backlog"]
            )
            yield GaugeMetricFamily(
                "shop_outbox_oldest_age_seconds",
                "Age of the oldest outbox message (0 when none)",
                value=_age(outbox["oldest_created_at"]),
            )
            yield GaugeMetricFamily(
                "shop_outbox_given_up",
                "Outbox messages the relay no longer sends (every attempt failed)",
                value=outbox["given_up"],
            )
        connection = redis_connection()
        if connection is not None:
            try:
                queues = queue_counts(connection, current_app.config["RQ_QUEUES"])
            except Exception:
                log.warning("metrics: could not read the queues", exc_info=True)
                ok.add_metric(["redis"], 0)
            else:
                ok.add_metric(["redis"], 1)
                yield from _queue_families(queues)
        yield ok


def _queue_families(queues: list[dict[str, Any]]) -> Iterator[GaugeMetricFamily]:
    helps = {
        "depth": "Jobs waiting in the queue",
        "started": "Jobs running now",
        "scheduled": "Jobs waiting for their time (retries)",
        "failed": "Jobs in the failed registry",
    }
    for figure, text in helps.items():
        family = GaugeMetricFamily(f"shop_queue_{figure}", text, labels=["queue"])
        for queue in queues:
            family.add_metric([queue["name"]], queue[figure])
        yield family
