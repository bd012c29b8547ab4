"""shop as deployed, under gunicorn: even a request gunicorn would refuse is a problem+json."""

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def served():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": TEST_DATABASE_URL,
        "REDIS_URL": TEST_REDIS_URL,
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            get(port, "/health")
            break
        except OSError:
            time.sleep(0.1)
    yield port
    server.terminate()
    server.wait(timeout=15)


def get(port, path, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


def test_a_long_query_string_is_a_414_problem(served):
    status, content_type, _ = get(served, "/api/v1/products?q=" + "x" * 10_000)
    assert (status, content_type) == (414, "application/problem+json")
    status, _, _ = get(served, "/api/v1/products?q=" + "x" * 100)
    assert status == 200


def test_oversized_headers_are_a_431_problem(served):
    status, content_type, _ = get(served, "/health", {"X-Filler": "y" * 20_000})
    assert (status, content_type) == (431, "application/problem+json")
