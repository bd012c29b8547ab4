"""The background processes: `python worker.py` runs a worker, `--scheduler` the scheduler;
both start, and both outlast a Redis outage."""

import operator
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rq import Queue, Retry
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import select

from shop.audit.models import AuditLog
from shop.db import db
from shop.queues import DEFAULT_QUEUE
from shop.schedule import JOBS, run_job
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, wait_for

ROOT = Path(__file__).resolve().parent.parent


def run_worker(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "worker.py", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": TEST_DATABASE_URL, "LOG_JSON": "false", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_worker_starts_drains_the_queue_and_exits_in_burst_mode():
    result = run_worker("--burst", REDIS_URL=TEST_REDIS_URL)
    assert result.returncode == 0, result.stderr


def test_without_redis_the_worker_explains_that_jobs_run_inline():
    result = run_worker("--burst", REDIS_URL="")
    assert result.returncode == 2
    assert "jobs run inline in the web process" in result.stderr


def started(*args: str, redis_url: str, session: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "worker.py", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": TEST_DATABASE_URL,
            "REDIS_URL": redis_url,
            "LOG_JSON": "false",
            "SCHEDULER_INTERVAL": "1",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=session,  # its own process group, to kill -9 as a whole
    )


def test_a_worker_outlasts_a_redis_outage_and_runs_what_comes_after(app, private_redis):
    redis = private_redis()
    worker = started(redis_url=redis.url)
    try:
        time.sleep(3)  # running and waiting for work
        redis.kill()
        time.sleep(3)  # Redis away
        assert worker.poll() is None, worker.stderr.read()
        redis.start()
        Queue(DEFAULT_QUEUE, connection=redis.client()).enqueue(run_job, "purge-expired-tokens")

        def audited():
            with app.app_context():
                return db.session.scalar(select(AuditLog.id).where(AuditLog.action == "job.run"))

        assert wait_for(audited, 30), "the worker did not run the job after Redis came back"
    finally:
        worker.terminate()
        worker.communicate(timeout=15)


def test_the_scheduler_outlasts_a_redis_outage_and_registers_its_schedule_again(private_redis):
    redis = private_redis()
    scheduler = started("--scheduler", redis_url=redis.url)
    client = redis.client()

    def registered():
        return client.zcard("rq:scheduler:scheduled_jobs") == len(JOBS)

    try:
        assert wait_for(registered, 20)
        redis.kill()
        time.sleep(3)
        assert scheduler.poll() is None, scheduler.stderr.read()
        redis.start()  # empty: no persistence
        assert wait_for(registered, 30), "the schedule was not registered again"
    finally:
        scheduler.terminate()
        scheduler.communicate(timeout=15)


def test_delayed_retries_resume_at_once_after_the_worker_is_killed(private_redis):
    redis = private_redis()
    connection = redis.client()
    queue = Queue(DEFAULT_QUEUE, connection=connection)
    worker = started(redis_url=redis.url, session=True)
    try:
        job = queue.enqueue(operator.truediv, 1, 0, retry=Retry(max=3, interval=2))
        assert wait_for(lambda: job.id in ScheduledJobRegistry(queue=queue), 20)  # failed once
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its scheduler, without warning
        worker.communicate(timeout=15)
        worker = started(redis_url=redis.url, session=True)

        def given_up():
            return job.id in FailedJobRegistry(queue=queue)

        assert wait_for(given_up, 30), "the delayed retries did not resume"
        job.refresh()
        assert job.retries_left == 0
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.communicate(timeout=15)


def test_the_backoff_stays_short(monkeypatch):
    """A Redis that is back is used within MAX_BACKOFF (2 s): capped at 30 s, the backoff of
    an earlier outage made the emails of a five-second restart go out 16 s after it."""
    import worker  # noqa: PLC0415  (the script, not a package)

    slept = []
    monkeypatch.setattr(worker.time, "sleep", slept.append)
    failures = iter(range(6))

    def run():
        if next(failures, None) is not None:
            raise worker.RedisConnectionError("gone")

    worker.outlast_redis(run)
    assert slept == [1, 2, 2, 2, 2, 2]
