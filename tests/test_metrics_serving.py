"""Metrics as deployed: gunicorn with two workers answers one sum over both (and keeps a dead
worker's counts); `python worker.py` and the scheduler serve theirs on METRICS_PORT, and
realtime.py on its own port, under the same access rule."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from redis import Redis
from rq import Queue
from websockets.sync.client import connect

from shop.queues import DEFAULT_QUEUE
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, wait_for
from tests.events.test_realtime import Realtime, token_of
from tests.factories import make_user
from tests.test_metrics import parse, value

ROOT = Path(__file__).resolve().parent.parent
HEALTH = {"route": "/health", "method": "GET", "status": "200"}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(port, path, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def answering(port, path="/health", headers=None, timeout=30.0):
    def up():
        try:
            return get(port, path, headers)[0] == 200
        except OSError:
            return False

    return wait_for(up, timeout)


def health_counts_per_worker(folder):
    """{pid: /health requests counted} from each worker's own counter file."""
    counts = {}
    for path in folder.glob("counter_*.db"):
        merged = MultiProcessCollector.merge([str(path)])
        counts[int(path.stem.split("_")[1])] = sum(
            sample.value
            for metric in merged
            if metric.name == "shop_http_requests"
            for sample in metric.samples
            if sample.labels == HEALTH and sample.name.endswith("_total")
        )
    return counts


@pytest.fixture
def gunicorn(tmp_path):
    port, folder = free_port(), tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"")  # a previous run's file: emptied at start
    env = {
        **os.environ,
        "DATABASE_URL": TEST_DATABASE_URL,
        "REDIS_URL": TEST_REDIS_URL,
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    if not answering(port, "/", timeout=60):
        server.kill()
        server.wait()
        pytest.fail("gunicorn did not start")
    yield port, folder
    server.terminate()
    server.wait(timeout=15)


def test_two_gunicorn_workers_answer_one_sum(gunicorn):
    port, folder = gunicorn
    assert not (folder / "counter_1.db").exists()
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        # Until both workers have answered some (the kernel picks who accepts).
        while sent < 400 and len([n for n in health_counts_per_worker(folder).values() if n]) < 2:
            statuses = list(pool.map(lambda _: get(port, "/health")[0], range(40)))
            assert statuses == [200] * 40
            sent += 40
    per_worker = health_counts_per_worker(folder)
    assert len([n for n in per_worker.values() if n]) == 2, per_worker
    assert sum(per_worker.values()) == sent
    # Whichever worker answers the scrape, it counts every worker's requests.
    for _ in range(6):
        status, text = get(port, "/metrics")
        assert status == 200
        found, _ = parse(text)
        assert value(found, "shop_http_requests_total", **HEALTH) == sent
        assert value(found, "shop_http_request_duration_seconds_count", route="/health",
                     method="GET") == sent  # fmt: skip
    # A worker that dies (gunicorn starts another) takes none of its counts with it.
    os.kill(next(pid for pid, n in per_worker.items() if n), signal.SIGKILL)
    assert answering(port, "/")
    found, _ = parse(get(port, "/metrics")[1])
    assert value(found, "shop_http_requests_total", **HEALTH) == sent


def background(*args, **env):
    return subprocess.Popen(
        [sys.executable, "worker.py", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": TEST_DATABASE_URL,
            "REDIS_URL": TEST_REDIS_URL,
            "LOG_JSON": "false",
            "LOG_LEVEL": "WARNING",
            "SCHEDULER_INTERVAL": "1",
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process):
    process.terminate()
    process.communicate(timeout=15)


def test_the_worker_serves_its_job_counts_on_metrics_port():
    port = free_port()
    queue = Queue(DEFAULT_QUEUE, connection=Redis.from_url(TEST_REDIS_URL))
    queue.empty()  # only the two jobs below are this worker's to count
    worker = background(METRICS_PORT=str(port))
    try:
        assert answering(port, "/metrics"), "the worker serves no metrics"
        queue.enqueue(json.dumps, [1])
        queue.enqueue(json.loads, "not json")

        def counted():
            found, _ = parse(get(port, "/metrics")[1])
            started = value(found, "shop_jobs_started_total", queue=DEFAULT_QUEUE)
            return (started, value(found, "shop_jobs_failed_total", queue=DEFAULT_QUEUE))

        assert wait_for(lambda: counted() == (2, 1), 30), counted()
        assert get(port, "/")[0] == 404
    finally:
        stop(worker)


def test_the_scheduler_serves_its_metrics_under_the_access_rule():
    port = free_port()
    scheduler = background(
        "--scheduler",
        METRICS_PORT=str(port),
        METRICS_ALLOW_FROM="10.0.0.0/8",
        METRICS_TOKEN="scrape-token",
    )
    token = {"Authorization": "Bearer scrape-token"}
    try:
        assert answering(port, "/metrics", token), "the scheduler serves no metrics"
        assert get(port, "/metrics")[0] == 404  # 127.0.0.1 is not in 10.0.0.0/8
        assert get(port, "/metrics", {"Authorization": "Bearer wrong"})[0] == 404
        _, families = parse(get(port, "/metrics", token)[1])
        assert "shop_jobs_queued" in families
    finally:
        stop(scheduler)


def test_realtime_serves_its_open_connections(app, monkeypatch):
    monkeypatch.setenv("METRICS_ALLOW_FROM", "10.0.0.0/8")
    monkeypatch.setenv("METRICS_TOKEN", "realtime-token")
    service = Realtime(app)
    token = {"Authorization": "Bearer realtime-token"}

    def connections():
        found, _ = parse(get(service.port, "/metrics", token)[1])
        return value(found, "shop_websocket_connections")

    try:
        assert get(service.port, "/metrics")[0] == 404
        assert connections() == 0
        user = make_user(app)
        headers = {"Authorization": f"Bearer {token_of(app, user)}"}
        with connect(service.url, additional_headers=headers, open_timeout=5) as one:
            assert json.loads(one.recv(timeout=5))["type"] == "welcome"
            with connect(service.url, open_timeout=5):  # not yet authenticated: open too
                assert wait_for(lambda: connections() == 2, 5)
        assert wait_for(lambda: connections() == 0, 5)
    finally:
        service.stop()
