"""Periodic jobs: declared as data, synced idempotently, run by RQ and audited."""

from datetime import UTC, datetime, timedelta

from rq import Queue
from rq_scheduler import Scheduler
from sqlalchemy import select

from shop import schedule
from shop.audit.models import AuditLog
from shop.auth.models import RevokedToken
from shop.db import db, unit_of_work, utcnow
from shop.queues import DEFAULT_QUEUE, redis_connection
from tests.conftest import wait_for


def test_sync_is_idempotent_and_cancels_removed_jobs(app):
    with app.app_context():
        scheduler = Scheduler(queue_name=DEFAULT_QUEUE, connection=redis_connection())
        scheduler.cron("* * * * *", func=print, id="periodic-retired-job")
        first = schedule.sync(scheduler)
        second = schedule.sync(scheduler)
        ids = sorted(job.id for job in scheduler.get_jobs())
    wanted = sorted(schedule.JOB_ID_PREFIX + job.name for job in schedule.JOBS)
    assert first["cancelled"] == ["periodic-retired-job"]
    assert sorted(first["added"]) == wanted
    assert second == {"added": [], "kept": wanted, "cancelled": []}
    assert ids == wanted


def test_sync_replaces_a_job_whose_schedule_changed(app):
    with app.app_context():
        scheduler = Scheduler(queue_name=DEFAULT_QUEUE, connection=redis_connection())
        name = schedule.JOBS[0].name
        scheduler.cron(
            "0 0 1 1 *", func=schedule.run_job, args=[name], id=schedule.JOB_ID_PREFIX + name
        )
        result = schedule.sync(scheduler)
        [job] = [j for j in scheduler.get_jobs() if j.id == schedule.JOB_ID_PREFIX + name]
    assert result["cancelled"] == [schedule.JOB_ID_PREFIX + name]
    assert job.meta["cron_string"] == schedule.JOBS[0].cron


def test_scheduled_job_runs_on_a_worker_and_is_audited(app, run_jobs):
    with app.app_context():
        with unit_of_work():
            db.session.add(RevokedToken(jti="old", expires_at=utcnow() - timedelta(days=1)))
            db.session.add(RevokedToken(jti="live", expires_at=utcnow() + timedelta(days=1)))
        Queue(DEFAULT_QUEUE, connection=redis_connection()).enqueue(
            schedule.run_job, "purge-expired-tokens"
        )
    assert run_jobs() == 1
    with app.app_context():
        assert db.session.scalars(select(RevokedToken.jti)).all() == ["live"]
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "job.run"))
    assert entry.actor_id is None and entry.actor_email == "system"
    assert entry.changes["job"] == "purge-expired-tokens"
    assert entry.changes["result"]["revoked_tokens"] == 1


def test_next_run_follows_the_cron_line_in_utc():
    job = schedule.get_job("daily-sales")  # 00:15 every day
    after = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert schedule.next_run(job, after) == datetime(2026, 12, 2, 0, 15, tzinfo=UTC)


def test_without_redis_the_periodic_jobs_run_in_a_thread(app):
    inline = schedule.InlineScheduler(app, tick=0.05)
    assert min(inline.due.values()) > utcnow()  # nothing runs at start
    inline.due["purge-expired-tokens"] = utcnow()  # as if its minute had come
    inline.start()
    try:

        def ran():
            with app.app_context():
                return db.session.scalar(
                    select(AuditLog.changes).where(AuditLog.action == "job.run")
                )

        assert wait_for(ran)
    finally:
        inline.stopping.set()
        inline.join(timeout=5)
    assert ran()["job"] == "purge-expired-tokens"
    assert inline.due["purge-expired-tokens"] > utcnow()  # and it is due again later


def test_a_tick_after_redis_came_back_empty_registers_the_schedule_again(app):
    with app.app_context():
        connection = redis_connection()
        scheduler = schedule.RelayingScheduler(queue_name=DEFAULT_QUEUE, connection=connection)
        schedule.sync(scheduler)
        connection.flushdb()  # Redis restarted without its data
        scheduler.enqueue_jobs()  # the next tick
        ids = sorted(job.id for job in scheduler.get_jobs())
    assert ids == sorted(schedule.JOB_ID_PREFIX + job.name for job in schedule.JOBS)
