"""The background processes start: `python worker.py` runs a worker (here in burst mode)."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL

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
