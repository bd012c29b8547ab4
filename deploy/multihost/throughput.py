"""`make bench-hosts` (issue 22, part 4): one app host against two, with the same total CPU
share, through HAProxy, measured with wrk from the host.

The bed (bed.py) runs three app hosts at once: app0 with 4 gunicorn workers in a CPU cgroup of
2 cores' quota, behind HAProxy's port 81; app1 and app2 with 2 workers each in cgroups of 1
core each, behind port 80. wrk runs each workload against one and then the other, interleaved
(A, B, A, B), and prints req/s, p99 and the load average of each run.

On a 2-core machine this cannot show the gain of more hardware: both set-ups share the same two
cores with PostgreSQL, Redis, HAProxy and wrk itself. What it shows is what splitting one host
into two behind HAProxy costs (or not) on the same CPU.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
from bed import Bed, address

HERE = Path(__file__).resolve().parent
SECONDS, CONNECTIONS, ROUNDS = 10, 16, 2
WORKLOADS = {"catalog list": None, "mixed (60% list, 30% product, 10% order)": HERE / "mixed.lua"}
PATH = "/api/v1/products?page_size=20"


def wrk(port: int, script: Path | None, env: dict[str, str]) -> tuple[float, str, str]:
    """(req/s, p99, load average) of one run."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency"]
    if script:
        command += ["-s", str(script)]
    command.append(f"http://{address('lb')}:{port}{PATH}")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", done.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if errors:
        print(f"  ({errors.group(1)} answers not 2xx)", file=sys.stderr)
    load = Path("/proc/loadavg").read_text().split()[:3]
    return rate, p99.group(1) if p99 else "?", " ".join(load)


def redis_ops() -> str:
    """The Redis tier's ceiling for simple commands (one connection each of 20 clients, no
    pipelining), on a database of its own in the bed's Redis."""
    command = ["redis-benchmark", "-h", address("redis"), "--dbnum", "2", "-q", "-n", "100000"]
    done = subprocess.run(
        [*command, "-c", "20", "-t", "get,set,incr"], capture_output=True, text=True, check=True
    )
    rates = re.findall(r"(\w+): ([\d.]+) requests per second", done.stdout)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    figures = ", ".join(f"{name} {float(rate):,.0f}/s" for name, rate in rates)
    return f"redis-benchmark (20 clients, no pipelining): {figures} (load {load})"


def main() -> int:
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    bed = Bed(
        app_hosts=("app0", "app1", "app2"),
        web_workers={"app0": 4, "app1": 2, "app2": 2},
        cpu_shares={"app0": 2.0, "app1": 1.0, "app2": 1.0},
    )
    with bed:
        base = bed.base
        login = httpx.post(
            f"{base}/api/v1/auth/login",
            json={"email": "customer@example.com", "password": "customer-pass-123"},
            timeout=30,
        )
        admin = httpx.post(
            f"{base}/api/v1/auth/login",
            json={"email": "admin@example.com", "password": "admin-pass-123"},
            timeout=30,
        ).json()["access_token"]
        product = httpx.post(
            f"{base}/api/v1/products",
            headers={"Authorization": f"Bearer {admin}"},
            json={"sku": "BENCH-1", "name": "Bench mug", "price": "5.00", "stock": 10_000_000},
        ).json()["id"]
        env = {**os.environ, "TOKEN": login.json()["access_token"], "PRODUCT": str(product)}
        setups = {"one host (4 workers, 2 cores)": 81, "two hosts (2 workers, 1 core each)": 80}
        for port in setups.values():  # warm up: each worker's first requests compile
            wrk(port, None, env)
        lines = []
        for workload, script in WORKLOADS.items():
            results: dict[str, list[tuple[float, str, str]]] = {name: [] for name in setups}
            for _ in range(ROUNDS):
                for name, port in setups.items():
                    results[name].append(wrk(port, script, env))
            for name, runs in results.items():
                rates = ", ".join(f"{r:.0f} req/s (p99 {p}, load {load})" for r, p, load in runs)
                lines.append(f"{workload}: {name}: {rates}")
            one, two = (sum(r for r, _, _ in runs) / len(runs) for runs in results.values())
            lines.append(f"{workload}: two hosts / one host = {two / one:.2f}")
        lines.append(redis_ops())
    for line in lines:
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
