"""Read routing (shop.replica) on a real streaming replica: reports read it, their writer and
a late replica read the primary, a stopped one is not waited for.

The pair is a primary and a replica of the tests' own (tests/private_postgres.py) on ports
5443 and 5442; without PostgreSQL's server programs these tests skip, and under CI=true fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from prometheus_client import REGISTRY
from redis import Redis
from sqlalchemy import text

from bench.data import recreate
from shop import create_app
from shop.config import ConfigError, load_config
from shop.db import db, unit_of_work
from shop.security import Role
from tests.conftest import TEST_REDIS_URL, close_redis_clients
from tests.factories import headers_for, make_product, make_user
from tests.private_postgres import Pair, Unavailable, replica_caught_up

PRIMARY_PORT, REPLICA_PORT = 5443, 5442
DASHBOARD = "/api/v1/reports/dashboard"


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    # Under /tmp, owned by postgres: pytest's own temporary folders are closed to other users.
    folder = Path(tempfile.mkdtemp(prefix="shop-replica-"))
    servers = Pair(folder, PRIMARY_PORT, REPLICA_PORT)
    try:
        try:
            servers.start()
        except (Unavailable, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", b"") or b""
            reason = f"no streaming replica here: {error} {detail.decode(errors='replace')}"
            if os.environ.get("CI") == "true":
                pytest.fail(f"A streaming replica is required under CI=true; {reason}")
            pytest.skip(reason)
        url = servers.primary.url.rsplit("/", 1)[0] + "/shop"
        recreate(url)
        yield servers
    finally:
        servers.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def routed(pair: Pair, app: Flask) -> Iterator[Any]:
    """`routed(**settings)`: an app on the pair's primary reading reports on its replica."""
    primary = pair.primary.url.rsplit("/", 1)[0] + "/shop"
    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        settings = {"REPLICA_MAX_LAG_SECONDS": 30, "REPLICA_STICKY_SECONDS": 30, **overrides}
        built.append(
            create_app(
                {
                    **app.config,
                    "RATELIMIT_STORAGE_URI": TEST_REDIS_URL,
                    "SQLALCHEMY_DATABASE_URI": primary,
                    "DATABASE_REPLICA_URL": pair.replica.url.rsplit("/", 1)[0] + "/shop",
                    **settings,
                }
            )
        )
        with built[-1].app_context():
            upgrade()
        replica_caught_up(pair.primary.engine("shop"), pair.replica.engine("shop"))
        return built[-1]

    yield build
    for other in built:
        with other.app_context():
            tables = [t for t in reversed(db.metadata.sorted_tables) if t.name != "alembic_version"]
            with db.engine.begin() as connection:
                for table in tables:
                    connection.execute(table.delete())
            db.engine.dispose()
        if "replica" in other.extensions:
            other.extensions["replica"].engine.dispose()
        close_redis_clients(other)
    with pair.replica.engine("shop").connect() as connection:
        connection.execute(text("SELECT pg_wal_replay_resume()"))


def served_by(server: str) -> float:
    return REGISTRY.get_sample_value("shop_replica_reads_total", {"server": server}) or 0.0


def replay(pair: Pair, *, paused: bool) -> None:
    with pair.replica.engine("shop").connect() as connection:
        connection.execute(text(f"SELECT pg_wal_replay_{'pause' if paused else 'resume'}()"))


def staff(app: Flask, role: Role = Role.STAFF) -> dict[str, str]:
    return headers_for(app, make_user(app, role=role))


def low_stock(client: Any, headers: dict[str, str]) -> int:
    answer = client.get(DASHBOARD, headers=headers)
    assert answer.status_code == 200, answer.json
    return int(answer.json["low_stock_count"])


def test_a_report_reads_the_replica_and_its_writer_the_primary(routed, pair):
    app = routed()
    client, writer, reader = app.test_client(), staff(app, Role.ADMIN), staff(app)
    before = served_by("replica")
    assert low_stock(client, reader) == 0
    assert served_by("replica") == before + 1
    replay(pair, paused=True)
    body = {"sku": "LOW-1", "name": "Lamp", "price": "25.00", "stock": 1}
    assert client.post("/api/v1/products", headers=writer, json=body).status_code == 201

    # Another client reads the replica's past (and that answer is not cached for anyone);
    # the writer reads the primary.
    assert low_stock(client, reader) == 0
    assert served_by("replica") == before + 2
    primary = served_by("primary")
    assert low_stock(client, writer) == 1
    assert served_by("primary") == primary + 1

    replay(pair, paused=False)
    replica_caught_up(pair.primary.engine("shop"), pair.replica.engine("shop"))
    from_replica = served_by("replica")
    Redis.from_url(TEST_REDIS_URL).flushdb()  # the writer's answer is cached: ask the replica
    assert low_stock(client, reader) == 1
    assert served_by("replica") == from_replica + 1
