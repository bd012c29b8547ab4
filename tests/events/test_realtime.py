"""`python realtime.py` as deployed (a process of its own) with a real WebSocket client:
auth by message and by header, 4401, replay after a reconnect with no gap and no duplicate,
order, who receives what, and two realtime processes both delivering an event committed by
a third process (this one)."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from shop.db import unit_of_work
from shop.events import live
from shop.events.log import record
from shop.security import Role
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL
from tests.factories import bearer, make_product, make_user, tokens_for

ROOT = Path(__file__).resolve().parent.parent.parent
API = "/api/v1"
PATH = "/api/v1/ws/notifications"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Realtime:
    def __init__(self, app):
        self.port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": TEST_DATABASE_URL,
            "REDIS_URL": TEST_REDIS_URL,
            "SECRET_KEY": app.config["SECRET_KEY"],
            "JWT_SECRET_KEY": app.config["JWT_SECRET_KEY"],
            "REALTIME_BIND": f"127.0.0.1:{self.port}",
            "LOG_LEVEL": "WARNING",
        }
        self.process = subprocess.Popen([sys.executable, "realtime.py"], cwd=ROOT, env=env)
        deadline = time.monotonic() + 60  # a loaded 2-core machine takes its time to import
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.process.kill()
        self.process.wait()
        raise RuntimeError("realtime.py did not start")

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.port}{PATH}"

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def realtime(app):
    service = Realtime(app)
    yield service
    service.stop()


def token_of(app, user):
    return tokens_for(app, user)["access_token"]


@contextmanager
def listen(realtime, app, user, last_event_id=None):
    """A connection authenticated by its first message, after its welcome."""
    with connect(realtime.url, open_timeout=5) as socket_:
        auth = {"action": "auth", "token": token_of(app, user)}
        if last_event_id:
            auth["last_event_id"] = last_event_id
        socket_.send(json.dumps(auth))
        welcome = json.loads(socket_.recv(timeout=5))
        assert welcome == {"type": "welcome", "user_id": user.id}
        yield socket_


def received(socket_, count, timeout=3.0):
    messages = []
    deadline = time.monotonic() + timeout
    while len(messages) < count:
        messages.append(json.loads(socket_.recv(timeout=max(0.01, deadline - time.monotonic()))))
    return messages


def nothing_more(socket_, wait=0.5):
    try:
        message = socket_.recv(timeout=wait)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected {message}")


def order(client, app, user, product):
    response = client.post(
        f"{API}/orders",
        headers=bearer(token_of(app, user)),
        json={"items": [{"product_id": product.id, "quantity": 1}], "shipping_address": SHIP_TO},
    )
    assert response.status_code == 201
    return response.json


def test_health_answers(realtime):
    with urllib.request.urlopen(f"http://127.0.0.1:{realtime.port}/health", timeout=2) as answer:
        assert answer.status == 200


def test_a_customer_sees_their_order_within_a_second_of_the_commit(
    client, app, realtime, customer, as_staff
):
    product = make_product(app, stock=10, low_stock_threshold=0)
    with listen(realtime, app, customer) as socket_:
        placed = order(client, app, customer, product)
        started = time.monotonic()
        [created] = received(socket_, 1, timeout=1.0)
        assert time.monotonic() - started < 0.5  # woken by the commit, not by its 1 s poll
        assert created["type"] == "order.created" and created["data"]["number"] == placed["number"]
        assert set(created) == {"id", "type", "created_at", "data"}
        client.patch(
            f"{API}/orders/{placed['id']}/status", headers=as_staff, json={"status": "cancelled"}
        )
        [cancelled] = received(socket_, 1, timeout=1.0)
        assert cancelled["type"] == "order.cancelled" and cancelled["id"] > created["id"]
        # The same events as the feed.
        feed = client.get(f"{API}/events", headers=bearer(token_of(app, customer))).json
        assert [e["id"] for e in feed["items"]] == [cancelled["id"], created["id"]]


def test_auth_by_the_upgrade_header(client, app, realtime, customer):
    product = make_product(app, stock=10, low_stock_threshold=0)
    headers = {"Authorization": f"Bearer {token_of(app, customer)}"}
    with connect(realtime.url, additional_headers=headers, open_timeout=5) as socket_:
        assert json.loads(socket_.recv(timeout=5))["type"] == "welcome"
        order(client, app, customer, product)
        assert received(socket_, 1)[0]["type"] == "order.created"


@pytest.mark.parametrize(
    "first",
    [
        json.dumps({"action": "auth", "token": "not-a-token"}),
        json.dumps({"action": "subscribe"}),
        "not json",
    ],
)
def test_a_bad_first_message_is_4401(realtime, first):
    with connect(realtime.url, open_timeout=5) as socket_:
        socket_.send(first)
        with pytest.raises(ConnectionClosed) as closed:
            socket_.recv(timeout=5)
    assert closed.value.rcvd.code == 4401


def test_a_refresh_token_or_a_disabled_user_is_4401(app, realtime):
    user = make_user(app, email="gone@example.com")
    refresh = tokens_for(app, user)["refresh_token"]
    with connect(realtime.url, open_timeout=5) as socket_:
        socket_.send(json.dumps({"action": "auth", "token": refresh}))
        with pytest.raises(ConnectionClosed) as closed:
            socket_.recv(timeout=5)
    assert closed.value.rcvd.code == 4401


def test_an_expired_token_closes_the_connection_with_4401(app, realtime, customer, monkeypatch):
    monkeypatch.setitem(app.config, "JWT_ACCESS_TOKEN_EXPIRES", timedelta(seconds=2))
    with listen(realtime, app, customer) as socket_, pytest.raises(ConnectionClosed) as closed:
        socket_.recv(timeout=6)
    assert closed.value.rcvd.code == 4401 and "expired" in closed.value.rcvd.reason


def test_a_reconnect_with_the_last_id_replays_without_gap_or_duplicate(
    client, app, realtime, customer
):
    product = make_product(app, stock=100, low_stock_threshold=0)
    with listen(realtime, app, customer) as socket_:
        order(client, app, customer, product)
        order(client, app, customer, product)
        first = received(socket_, 2)
    missed = [order(client, app, customer, product)["number"] for _ in range(3)]  # offline
    with listen(realtime, app, customer, last_event_id=first[-1]["id"]) as socket_:
        replayed = received(socket_, 3)
        assert [e["data"]["number"] for e in replayed] == missed
        live = order(client, app, customer, product)
        [after] = received(socket_, 1)
        assert after["data"]["number"] == live["number"]
        assert nothing_more(socket_)
    ids = [e["id"] for e in [*first, *replayed, after]]
    assert ids == sorted(ids) and len(set(ids)) == 6


def test_a_customer_never_receives_another_s_events_and_staff_receive_all(
    client, app, realtime, customer, staff
):
    other = make_user(app, email="other@example.com")
    product = make_product(app, stock=100, low_stock_threshold=0)
    with (
        listen(realtime, app, customer) as mine,
        listen(realtime, app, other) as theirs,
        listen(realtime, app, staff) as staff_socket,
    ):
        placed = order(client, app, customer, product)
        assert received(mine, 1)[0]["data"]["number"] == placed["number"]
        assert received(staff_socket, 1)[0]["data"]["number"] == placed["number"]
        assert nothing_more(theirs)
        their_order = order(client, app, other, product)
        assert received(theirs, 1)[0]["data"]["number"] == their_order["number"]
        assert received(staff_socket, 1)[0]["data"]["number"] == their_order["number"]
        assert nothing_more(mine, wait=0.3)


def test_two_realtime_processes_both_deliver_an_event_committed_by_a_third(
    client, app, realtime, customer
):
    second = Realtime(app)
    try:
        product = make_product(app, stock=10, low_stock_threshold=0)
        admin = make_user(app, email="watcher@example.com", role=Role.ADMIN)
        with listen(realtime, app, customer) as one, listen(second, app, admin) as two:
            placed = order(client, app, customer, product)
            assert received(one, 1)[0]["data"]["number"] == placed["number"]
            assert received(two, 1)[0]["data"]["number"] == placed["number"]
    finally:
        second.stop()


def test_a_client_that_does_not_keep_up_is_closed_not_buffered_without_bound(app, monkeypatch):
    """The pump never waits for a client: one with MAX_QUEUED messages unsent is closed with
    4408 (it reconnects with its last id) and left out of the fan-out."""
    monkeypatch.setattr(live, "MAX_QUEUED", 3)
    closed: list[int] = []

    class Stalled:
        async def close(self, code, reason):
            closed.append(code)

    with app.app_context():
        for n in range(5):
            with unit_of_work():
                record("order.created", {"n": n}, user_id=None)

    async def pump_once():
        hub = live.Hub(app)
        slow = live.Client(Stalled(), user_id=1, sees_all=True, cursor=(0, 0))
        keeping_up = live.Client(Stalled(), user_id=2, sees_all=False, cursor=(0, 0))
        hub._join(slow)
        hub._join(keeping_up)
        assert await hub.read_on() == 5
        await asyncio.sleep(0)  # the close runs
        return hub, slow, keeping_up

    hub, slow, keeping_up = asyncio.run(pump_once())
    assert closed == [live.TOO_SLOW]
    assert slow not in hub.staff and slow.queue.qsize() == 3
    assert keeping_up.queue.qsize() == 0  # staff-only events: not a customer's
