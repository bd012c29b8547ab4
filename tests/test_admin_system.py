"""GET /api/v1/admin/system: admins only; every part read, and each part degraded on its own
when its dependency is away (Redis stopped, Redis not configured)."""

import os
import time

from redis import Redis
from rq import Queue, Worker
from rq_scheduler import Scheduler

from shop.db import unit_of_work
from shop.outbox import MAX_ATTEMPTS, OutboxMessage
from shop.queues import DEFAULT_QUEUE
from shop.schedule import JOB_ID_PREFIX, JOBS, LAST_TICK_KEY, sync
from shop.security import Role
from tests.conftest import TEST_REDIS_URL
from tests.factories import headers_for, make_user

PATH = "/api/v1/admin/system"


def test_only_admins_see_the_system(client, as_customer, as_staff, as_admin):
    assert client.get(PATH).status_code == 401
    assert client.get(PATH, headers=as_customer).status_code == 403
    assert client.get(PATH, headers=as_staff).status_code == 403
    assert client.get(PATH, headers=as_admin).status_code == 200


def test_every_part_is_read(app, client, as_admin):
    redis = Redis.from_url(TEST_REDIS_URL)
    queue = Queue(DEFAULT_QUEUE, connection=redis)
    queue.enqueue(os.getpid)
    worker = Worker([queue], connection=redis, name="metrics-test-worker")
    worker.register_birth()
    worker.heartbeat()
    sync(Scheduler(queue_name=DEFAULT_QUEUE, connection=redis))
    redis.set(LAST_TICK_KEY, time.time() - 3)
    with app.app_context(), unit_of_work() as session:
        session.add(OutboxMessage(task="x.y", payload={}))
        session.add(OutboxMessage(task="x.z", payload={}, attempts=MAX_ATTEMPTS))
    try:
        answer = client.get(PATH, headers=as_admin)
    finally:
        worker.register_death()
    assert answer.status_code == 200
    system = answer.json

    database = system["database"]
    assert database["status"] == "ok" and database["version"].startswith("PostgreSQL ")
    assert database["size_bytes"] > 0 and "status" in database["pool"]
    assert database["pool"]["size"] >= 1 and database["pool"]["checkedout"] >= 0

    assert system["redis"]["status"] == "ok"
    assert system["redis"]["used_memory_bytes"] > 0 and system["redis"]["connected_clients"] >= 1

    queues = system["queues"]
    assert queues["status"] == "ok"
    assert queues["queues"] == [
        {"name": DEFAULT_QUEUE, "depth": 1, "started": 0, "scheduled": 0, "failed": 0}
    ]
    [seen] = [w for w in queues["workers"] if w["name"] == "metrics-test-worker"]
    assert seen["queues"] == [DEFAULT_QUEUE] and seen["last_heartbeat"] is not None

    scheduler = system["scheduler"]
    assert scheduler["status"] == "ok" and scheduler["running"] is False  # no process
    assert scheduler["last_tick"] is not None
    assert [job["name"] for job in scheduler["jobs"]] == [job.name for job in JOBS]
    assert all(job["next_run"] for job in scheduler["jobs"])

    assert system["outbox"] == {
        "status": "ok",
        "backlog": 2,
        "given_up": 1,
        "oldest_created_at": system["outbox"]["oldest_created_at"],
    }
    process = system["process"]
    assert process["status"] == "ok" and process["pid"] == os.getpid()
    assert process["rss_bytes"] > 0 and process["cpu_user_seconds"] > 0
    assert len(process["load_average"]) == 3


def test_with_redis_stopped_its_parts_say_so_and_the_rest_answers(other_app, private_redis):
    redis = private_redis()
    app = other_app(REDIS_URL=redis.url)
    admin = make_user(app, role=Role.ADMIN)
    redis.kill()
    started = time.monotonic()
    answer = app.test_client().get(PATH, headers=headers_for(app, admin))
    assert answer.status_code == 200
    assert time.monotonic() - started < 5  # short timeouts, not a hung page
    system = answer.json
    for part in ("redis", "queues", "scheduler"):
        assert system[part]["status"] == "unavailable", part
        assert "ConnectionError" in system[part]["error"], system[part]
        assert set(system[part]) == {"status", "error"}
    for part in ("database", "outbox", "process"):
        assert system[part]["status"] == "ok", part


def test_without_redis_configured_its_parts_say_so(other_app):
    app = other_app(REDIS_URL=None)
    admin = make_user(app, role=Role.ADMIN)
    system = app.test_client().get(PATH, headers=headers_for(app, admin)).json
    for part in ("redis", "queues", "scheduler"):
        assert system[part]["status"] == "not configured", part
        assert "REDIS_URL" in system[part]["error"]
    assert system["database"]["status"] == "ok"


def test_the_scheduled_jobs_show_their_next_run_from_redis(client, as_admin):
    redis = Redis.from_url(TEST_REDIS_URL)
    scheduler = Scheduler(queue_name=DEFAULT_QUEUE, connection=redis)
    sync(scheduler)
    redis.zadd(Scheduler.scheduled_jobs_key, {JOB_ID_PREFIX + JOBS[0].name: 2_000_000_000})
    redis.zrem(Scheduler.scheduled_jobs_key, JOB_ID_PREFIX + JOBS[1].name)
    jobs = {j["name"]: j for j in client.get(PATH, headers=as_admin).json["scheduler"]["jobs"]}
    assert jobs[JOBS[0].name]["next_run"].startswith("2033-05-18T03:33:20")
    assert jobs[JOBS[1].name]["next_run"] is None  # not registered
    assert jobs[JOBS[0].name]["cron"] == JOBS[0].cron
