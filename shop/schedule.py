"""Periodic jobs, declared as data; their idempotent sync into rq-scheduler, and, on the
embedded default (no Redis), an in-process scheduler that runs the same jobs on the same
cron lines in a thread of the development server (`flask serve`)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from crontab import CronTab
from flask import Flask
from rq_scheduler import Scheduler
from werkzeug.utils import import_string

from shop import metrics, outbox
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.db import unit_of_work, utcnow
from shop.events import delivery
from shop.queues import DEFAULT_QUEUE

log = logging.getLogger(__name__)
JOB_ID_PREFIX = "periodic-"
# When the scheduler last ticked (seconds since the epoch), for GET /admin/system; it lives a
# few ticks (an absent key: no scheduler has ticked lately).
LAST_TICK_KEY = "shop-scheduler:last-tick"


@dataclass(frozen=True)
class PeriodicJob:
    name: str  # stable: the scheduler's job id is derived from it
    func: str  # dotted path of a function that takes no arguments and returns a summary
    cron: str  # UTC
    description: str


JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob(
        "daily-sales",
        "shop.reports.jobs.daily_sales_job",
        "15 0 * * *",
        "Aggregate yesterday's sales (and any day an order change made stale).",
    ),
    PeriodicJob(
        "low-stock",
        "shop.inventory.low_stock.sweep_low_stock",
        "*/30 * * * *",
        "Open low-stock notifications (and email them) for any the stock changes missed.",
    ),
    PeriodicJob(
        "inventory-check",
        "shop.inventory.ledger.check_stock_ledger",
        "0 4 * * 0",
        "Reconcile every product's and variant's stock with its ledger; email any drift.",
    ),
    PeriodicJob(
        "popularity",
        "shop.reports.jobs.refresh_popularity",
        "5 * * * *",
        "Recompute each product's units ordered in the last 30 days (sort=popularity).",
    ),
    PeriodicJob(
        "pending-orders",
        "shop.orders.jobs.process_pending_orders",
        "10 * * * *",
        "Remind customers once about unpaid pending orders; cancel the expired ones.",
    ),
    PeriodicJob(
        "purge-idempotency-keys",
        "shop.idempotency.purge_expired_keys",
        "40 * * * *",
        "Delete Idempotency-Keys older than their 24 hours.",
    ),
    PeriodicJob(
        "announce-flash-sales",
        "shop.products.flash_sales.announce_started",
        "* * * * *",
        "Tell the customers waiting for their products that a flash sale has started.",
    ),
    PeriodicJob(
        "prune-events",
        "shop.events.log.prune_events",
        "25 * * * *",
        "Delete events older than EVENT_RETENTION_HOURS (72 by default).",
    ),
    PeriodicJob(
        "resume-imports",
        "shop.products.imports.resume_imports",
        "*/5 * * * *",
        "Send again catalog imports left behind (Redis away at the upload, a worker killed).",
    ),
    PeriodicJob(
        "purge-carts",
        "shop.orders.cart.purge_idle_carts",
        "35 3 * * *",
        "Delete guest carts idle CART_IDLE_DAYS (30 by default), with their lines.",
    ),
    PeriodicJob(
        "interactions",
        "shop.reports.behaviour.flush_interactions",
        "* * * * *",
        "Write the buffered views, searches, cart and wishlist adds, purchases and ratings.",
    ),
    PeriodicJob(
        "recommendations",
        "shop.recommendations.jobs.refresh_recommendations",
        "20 * * * *",
        "Recompute every product's and customer's recommendations from their histories.",
    ),
    PeriodicJob(
        "purge-expired-tokens",
        "shop.auth.tokens.purge_expired_tokens",
        "17 3 * * *",
        "Delete expired revocations, refresh tokens and single-use codes.",
    ),
)


class UnknownJob(LookupError):
    pass


def get_job(name: str) -> PeriodicJob:
    for job in JOBS:
        if job.name == name:
            return job
    known = ", ".join(j.name for j in JOBS)
    raise UnknownJob(f"No periodic job named {name!r}; known: {known}.")


def run_job(name: str) -> Any:
    """Run a periodic job now and audit the run (actor: system). What RQ executes."""
    job = get_job(name)
    result = import_string(job.func)()
    with unit_of_work():
        record(
            Action.JOB_RUN,
            actor=None,
            target_type=Target.JOB,
            changes={"job": name, "result": result},
        )
    log.info("job %s done: %s", name, result)
    return result


def sync(scheduler: Scheduler) -> dict[str, list[str]]:
    """Make rq-scheduler hold exactly JOBS: add missing, replace changed, cancel removed."""
    wanted = {JOB_ID_PREFIX + job.name: job for job in JOBS}
    kept, cancelled = [], []
    for scheduled in scheduler.get_jobs():
        if not scheduled.id.startswith(JOB_ID_PREFIX):
            continue
        job = wanted.get(scheduled.id)
        if job and scheduled.meta.get("cron_string") == job.cron:
            kept.append(scheduled.id)
        else:
            scheduler.cancel(scheduled)
            scheduled.delete()
            cancelled.append(scheduled.id)
    added = []
    for job_id, job in wanted.items():
        if job_id in kept:
            continue
        scheduler.cron(
            job.cron,
            func=run_job,
            args=[job.name],
            id=job_id,
            queue_name=DEFAULT_QUEUE,
            use_local_timezone=False,
        )
        added.append(job_id)
    return {"added": sorted(added), "kept": sorted(kept), "cancelled": sorted(cancelled)}


def next_run(job: PeriodicJob, after: datetime) -> datetime:
    """When `job` next runs after `after` (its cron line is UTC)."""
    return after + timedelta(seconds=CronTab(job.cron).next(now=after, default_utc=True))


class InlineScheduler(threading.Thread):
    """Runs the periodic jobs, and every tick the webhooks' fan-out, in a thread of a single
    process: the embedded default's stand-in for rq-scheduler (with Redis, `worker.py
    --scheduler` does this, for every process)."""

    def __init__(self, app: Flask, jobs: tuple[PeriodicJob, ...] = JOBS, tick: float = 5) -> None:
        super().__init__(name="shop-inline-scheduler", daemon=True)
        self.app, self.jobs, self.tick = app, jobs, tick
        started = utcnow()
        self.due = {job.name: next_run(job, started) for job in jobs}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.tick):
            with self.app.app_context():
                try:
                    delivery.tick()
                except Exception:
                    log.exception("webhook fan-out failed; will retry next tick")
            now = utcnow()
            for job in self.jobs:
                if self.due[job.name] <= now:
                    self.due[job.name] = next_run(job, now)
                    with self.app.app_context():
                        try:
                            run_job(job.name)
                        except Exception:
                            log.exception(
                                "periodic job %s failed; it runs again next time", job.name
                            )


class RelayingScheduler(Scheduler):
    """rq-scheduler whose every tick also re-registers a schedule Redis lost (a restart from
    nothing, a flush), relays the outbox to RQ, and fans new events out to webhooks."""

    def enqueue_job(self, job: Any) -> Any:
        queued = super().enqueue_job(job)
        metrics.child(metrics.JOBS_QUEUED, job.origin or DEFAULT_QUEUE).inc()
        return queued

    def enqueue_jobs(self) -> Any:
        try:
            present = {job.id for job in self.get_jobs()}
            if any(JOB_ID_PREFIX + job.name not in present for job in JOBS):
                log.warning("periodic jobs missing from Redis; synced again: %s", sync(self))
        except Exception:
            log.exception("could not check the periodic schedule; will retry next tick")
        jobs = super().enqueue_jobs()
        try:
            self.connection.set(LAST_TICK_KEY, time.time(), ex=int(self._interval) * 3 + 10)
        except Exception:
            log.warning("could not record the tick", exc_info=True)
        try:
            outbox.relay()
        except Exception:
            log.exception("outbox relay failed; will retry next tick")
        try:
            delivery.tick()
        except Exception:
            log.exception("webhook fan-out failed; will retry next tick")
        return jobs
