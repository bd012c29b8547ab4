"""Fixtures: a real PostgreSQL database built by the migrations, real Redis, a real SMTP server."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from redis import Redis
from rq import Queue
from sqlalchemy import event, text

from bench.data import recreate
from shop import caching, create_app, queues
from shop.db import db
from shop.extensions import cache
from shop.queues import DEFAULT_QUEUE, AppWorker
from shop.security import Role
from tests.factories import headers_for, make_user
from tests.private_redis import PrivateRedis

# Under pytest-xdist (`make test` runs -n 2) each worker process has a database and a Redis
# database of its own: gw0 the given ones' shop_test_gw0 and db 15, gw1 shop_test_gw1 and db 14.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _for_this_worker(database_url: str, redis_url: str) -> tuple[str, str]:
    if not _WORKER:
        return database_url, redis_url
    redis_base, redis_db = redis_url.rsplit("/", 1)
    return (
        f"{database_url}_{_WORKER}",
        f"{redis_base}/{int(redis_db) - int(_WORKER.removeprefix('gw'))}",
    )


TEST_DATABASE_URL, TEST_REDIS_URL = _for_this_worker(
    os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/shop_test"),
    os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
)


class Mailbox:
    """Collects what the in-test SMTP server receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in (m["To"] or "")]


def text_of(message: EmailMessage) -> str:
    """The plain-text part of a message, decoded."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[Controller, Mailbox]]:
    mailbox = Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, mailbox
    controller.stop()


@pytest.fixture(scope="session")
def app(smtp: tuple[Controller, Mailbox], tmp_path_factory: Any) -> Iterator[Flask]:
    controller, _ = smtp
    recreate(TEST_DATABASE_URL)
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": TEST_DATABASE_URL,
            "REDIS_URL": TEST_REDIS_URL,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-1234",
            "JWT_SECRET_KEY": "test-jwt-secret-key-that-is-long-enough-1234",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": controller.port,
            "ADMIN_EMAILS": ["ops@example.com"],
            "LOG_JSON": False,
            "MEDIA_ROOT": str(tmp_path_factory.mktemp("media")),
            # The API-wide limits are tried with low ones in tests/test_edges.py.
            "RATE_LIMIT_ANON": "100000 per minute",
            "RATE_LIMIT_USER": "100000 per minute",
        }
    )
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


TABLES_KEPT = {"alembic_version"}


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty every table and the Redis test database after each test."""
    if request.node.get_closest_marker("embedded"):
        yield
        return
    app: Flask = request.getfixturevalue("app")
    mailbox: Mailbox = request.getfixturevalue("smtp")[1]
    mailbox.messages.clear()
    yield
    with app.app_context():
        db.session.remove()
        # DELETE, children first: on small tables it is ten times faster than TRUNCATE.
        tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in TABLES_KEPT]
        with db.engine.begin() as connection:
            for table in tables:
                connection.execute(table.delete())
    Redis.from_url(TEST_REDIS_URL).flushdb()
    # A test that broke its own Redis leaves this process's cache state as it would be.
    caching._unhealthy_until = 0.0
    caching._bumps_failed_until = 0.0
    queues._down_until = 0.0
    caching._unbumped.clear()


@pytest.fixture
def other_app(app: Flask) -> Iterator[Any]:
    """Another app on the test database with some settings changed.

    Rate-limit storage stays on the test Redis: the limiter is one object shared by every app.
    """

    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        built.append(
            create_app({**app.config, "RATELIMIT_STORAGE_URI": TEST_REDIS_URL, **overrides})
        )
        return built[-1]

    yield build
    for other in built:
        close_redis_clients(other)


def close_redis_clients(app: Flask) -> None:
    """Close an app's Redis connections now: one to a Redis a test killed is never read
    again, and its socket would otherwise be left for the garbage collector to warn about."""
    clients = [app.extensions.get("redis")]
    backend = app.extensions.get("cache", {}).get(cache)
    clients += [getattr(backend, "_write_client", None), getattr(backend, "_read_client", None)]
    for client in clients:
        if client is not None:
            client.connection_pool.disconnect()


@pytest.fixture
def private_redis(tmp_path: Any) -> Iterator[Any]:
    """`private_redis(appendonly=False)` starts a redis-server of the test's own."""
    made: list[PrivateRedis] = []

    def start(appendonly: bool = False) -> PrivateRedis:
        made.append(PrivateRedis(tmp_path, appendonly=appendonly))
        return made[-1]

    yield start
    for redis in made:
        redis.stop()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def mailbox(smtp: tuple[Controller, Mailbox]) -> Mailbox:
    return smtp[1]


@pytest.fixture
def run_jobs(app: Flask) -> Any:
    """Run every queued RQ job with a real worker in burst mode; returns how many ran."""

    def run() -> int:
        connection = Redis.from_url(TEST_REDIS_URL)
        queue = Queue(DEFAULT_QUEUE, connection=connection)
        before = queue.finished_job_registry.count + queue.failed_job_registry.count
        worker = AppWorker([queue], connection=connection, app=app)
        worker.work(burst=True, with_scheduler=False)
        return queue.finished_job_registry.count + queue.failed_job_registry.count - before

    return run


class QueryCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, *args: Any) -> None:
        self.statements.append(args[2])

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def statements_of(app: Flask) -> Iterator[QueryCounter]:
    """`with statements_of(app) as counter:` counts the SQL statements `app` sends meanwhile."""
    counter = QueryCounter()
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", counter)


@pytest.fixture
def count_queries(app: Flask) -> Any:
    """`with count_queries() as counter:` counts the SQL statements sent meanwhile."""
    return lambda: statements_of(app)


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def settle_events(app: Flask, timeout: float = 10.0) -> None:
    """Wait until the event feed shows every event written so far. The feed (shop/events/log.py)
    holds an event back while any transaction older than its own is open anywhere on the
    PostgreSQL server: the other test process's, in its own database, too, for a moment."""
    horizon = text(
        "SELECT coalesce(max(txid), 0) < pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
        " FROM events"
    )

    def settled() -> bool:
        with app.app_context():
            return bool(db.session.scalar(horizon))

    assert wait_for(settled, timeout), "an open transaction held the event feed back"


@pytest.fixture
def customer(app: Flask) -> Any:
    return make_user(app, first_name="Cleo")


@pytest.fixture
def staff(app: Flask) -> Any:
    return make_user(app, role=Role.STAFF)


@pytest.fixture
def admin(app: Flask) -> Any:
    return make_user(app, role=Role.ADMIN)


@pytest.fixture
def as_customer(app: Flask, customer: Any) -> dict[str, str]:
    return headers_for(app, customer)


@pytest.fixture
def as_staff(app: Flask, staff: Any) -> dict[str, str]:
    return headers_for(app, staff)


@pytest.fixture
def as_admin(app: Flask, admin: Any) -> dict[str, str]:
    return headers_for(app, admin)
