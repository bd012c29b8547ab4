"""Read routing (shop.replica) on a real streaming replica: reports read it, their writer and
a late replica read the primary, a stopped one is not waited for.

The pair is a primary and a replica of the tests' own (tests/private_postgres.py) on ports
5443 and 5442 (per xdist worker, see PRIMARY_PORT); without PostgreSQL's server programs
these tests skip, and under CI=true fail."""

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

# Two more for each further pytest-xdist worker (gw1: 5445 and 5444), each with a pair of its own.
_OFFSET = 2 * int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
PRIMARY_PORT, REPLICA_PORT = 5443 + _OFFSET, 5442 + _OFFSET
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


def test_a_writer_reads_the_replica_again_once_its_writes_are_there(routed, pair):
    app = routed(REPLICA_MAX_LAG_SECONDS=1, REPLICA_STICKY_SECONDS=1)
    client, writer = app.test_client(), staff(app, Role.ADMIN)
    body = {"sku": "LOW-1", "name": "Lamp", "price": "25.00", "stock": 1}
    assert client.post("/api/v1/products", headers=writer, json=body).status_code == 201
    primary, replica = served_by("primary"), served_by("replica")
    assert low_stock(client, writer) == 1
    assert (served_by("primary"), served_by("replica")) == (primary + 1, replica)
    time.sleep(1.1)
    Redis.from_url(TEST_REDIS_URL).flushdb()  # the cached answer (the key has expired anyway)
    assert low_stock(client, writer) == 1
    assert served_by("replica") == replica + 1


def test_a_replica_behind_the_bound_is_not_read(routed, pair):
    app = routed(REPLICA_MAX_LAG_SECONDS=1, REPLICA_STICKY_SECONDS=1)
    client, reader = app.test_client(), staff(app)
    replica = served_by("replica")
    assert low_stock(client, reader) == 0
    assert served_by("replica") == replica + 1
    replay(pair, paused=True)
    make_product(app, stock=1)  # written by no client: only the lag keeps it from the past
    time.sleep(1.1)
    primary = served_by("primary")
    assert low_stock(client, reader) == 1
    assert served_by("primary") == primary + 1


def test_a_stopped_replica_is_not_waited_for(routed, pair):
    app = routed()
    client, reader = app.test_client(), staff(app)
    assert low_stock(client, reader) == 0  # a pooled connection to the replica, now dead
    pair.replica.stop()
    try:
        make_product(app, stock=1)
        primary = served_by("primary")
        for _ in range(3):  # its connection fails, then the replica is left alone
            Redis.from_url(TEST_REDIS_URL).flushdb()  # not the answer cached: the view again
            started = time.monotonic()
            assert low_stock(client, reader) == 1
            assert time.monotonic() - started < 2
        assert served_by("primary") == primary + 3
    finally:
        pair.replica.start()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/reports/sales",
        "/api/v1/reports/sales?format=csv",
        "/api/v1/reports/top-products",
        "/api/v1/reports/order-status",
        "/api/v1/reports/products/{id}",
        "/api/v1/reports/search",
    ],
)
def test_every_staff_report_reads_the_replica(routed, pair, path):
    app = routed()
    product = make_product(app)
    replica_caught_up(pair.primary.engine("shop"), pair.replica.engine("shop"))
    replica = served_by("replica")
    answer = app.test_client().get(path.format(id=product.id), headers=staff(app))
    assert answer.status_code == 200
    assert served_by("replica") == replica + 1


def test_a_sellers_report_reads_the_replica(routed):
    app = routed()
    replica = served_by("replica")
    seller = staff(app, Role.SELLER)
    assert app.test_client().get("/api/v1/seller/reports/sales", headers=seller).status_code == 200
    assert served_by("replica") == replica + 1


def test_the_storefronts_best_sellers_stay_on_the_primary(routed):
    app = routed()
    replica = served_by("replica")
    assert app.test_client().get("/api/v1/products/best-sellers").status_code == 200
    assert served_by("replica") == replica


def test_a_server_not_in_recovery_is_not_read_as_a_replica(routed, pair):
    app = routed(DATABASE_REPLICA_URL=pair.primary.url.rsplit("/", 1)[0] + "/shop")
    primary, replica = served_by("primary"), served_by("replica")
    assert low_stock(app.test_client(), staff(app)) == 0
    assert (served_by("primary"), served_by("replica")) == (primary + 1, replica)


def test_no_unit_of_work_runs_on_the_replica(routed):
    app = routed()
    on_replica = app.extensions["replica"].session
    with (
        app.test_request_context(),
        on_replica(),
        pytest.raises(RuntimeError, match="read replica"),
        unit_of_work(),
    ):
        pass


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"REDIS_URL": None}, "needs REDIS_URL"),
        ({"SQLALCHEMY_DATABASE_URI": "sqlite:///x.db"}, "PostgreSQL"),
        ({"DATABASE_REPLICA_URL": "sqlite:///y.db"}, "PostgreSQL"),
        ({"REPLICA_MAX_LAG_SECONDS": 6.0}, "at most REPLICA_STICKY_SECONDS"),
        ({"REPLICA_MAX_LAG_SECONDS": 0.0}, "above 0"),
    ],
)
def test_replica_settings_are_checked(tmp_path, settings, message):
    given = {
        "SQLALCHEMY_DATABASE_URI": "postgresql://db/shop",
        "DATABASE_REPLICA_URL": "postgresql://replica/shop",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        **settings,
    }
    with pytest.raises(ConfigError, match=message):
        load_config(str(tmp_path), given)


def test_a_heroku_style_replica_url_is_read(tmp_path):
    given = {
        "SQLALCHEMY_DATABASE_URI": "postgresql://db/shop",
        "DATABASE_REPLICA_URL": "postgres://replica/shop",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    config = load_config(str(tmp_path), given)
    assert config["DATABASE_REPLICA_URL"] == "postgresql://replica/shop"
    assert (config["REPLICA_MAX_LAG_SECONDS"], config["REPLICA_STICKY_SECONDS"]) == (2.0, 5.0)
