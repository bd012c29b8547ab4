"""Periodic jobs: declared as data, synced idempotently, run by RQ or from the CLI."""

from datetime import timedelta

from flask_migrate import check
from rq import Queue
from rq_scheduler import Scheduler
from sqlalchemy import func, select

from shop import schedule
from shop.audit.models import AuditLog
from shop.auth.models import RevokedToken, User
from shop.db import db, unit_of_work, utcnow
from shop.queues import DEFAULT_QUEUE, redis_connection
from shop.security import verify_password


def test_models_and_migrations_agree(app):
    with app.app_context():
        check()  # raises when autogenerate would find a difference


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


def test_cli_jobs_list_run_and_schedule(app):
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["jobs", "list"])
    assert listed.exit_code == 0 and "purge-expired-tokens" in listed.output
    ran = runner.invoke(args=["jobs", "run", "purge-expired-tokens"])
    assert ran.exit_code == 0 and '"revoked_tokens": 0' in ran.output
    unknown = runner.invoke(args=["jobs", "run", "no-such-job"])
    assert unknown.exit_code == 2 and "No periodic job named 'no-such-job'" in unknown.output
    scheduled = runner.invoke(args=["jobs", "schedule"])
    assert scheduled.exit_code == 0 and "periodic-purge-expired-tokens" in scheduled.output
    again = runner.invoke(args=["jobs", "schedule"])
    assert '"added": []' in again.output


def test_cli_create_admin(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-admin", "--email", "Boss@example.com", "--password", "boss-pass-123"]
    )
    assert result.exit_code == 0, result.output
    login = client.post(
        "/api/v1/auth/login", json={"email": "boss@example.com", "password": "boss-pass-123"}
    )
    assert login.json["user"]["role"] == "admin"
    weak = runner.invoke(args=["create-admin", "--email", "x@example.com", "--password", "123"])
    assert weak.exit_code == 1 and "too weak" in weak.output
    again = runner.invoke(
        args=["create-admin", "--email", "boss@example.com", "--password", "other-pass-123"]
    )
    assert again.exit_code == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(db.metadata.tables["users"])) == 1


def test_cli_seed_is_idempotent_and_generates_customers(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed", "--customers", "25"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["seed"])
    assert '"demo_data": "skipped (not empty)"' in second.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 28
        admin = db.session.scalar(select(User).where(User.email == "admin@example.com"))
        assert admin.role == "admin" and verify_password(admin.password_hash, "admin-pass-123")
