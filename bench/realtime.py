"""`make bench-realtime`: one `python realtime.py` holding thousands of authenticated
WebSocket connections while events commit at a steady rate; prints its RSS and the commit ->
delivery latency (p50, p99, max), and whether each connection got exactly its events.

The events are written by the code every change uses (events.log.record in a committed unit of
work, which wakes the realtime processes after the commit), each for a random customer; every
customer holds one connection and a few staff connections receive everything. The latency of
an event is from the end of its commit to its arrival at a client in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from flask_jwt_extended import create_access_token
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.data import fresh_app  # noqa: E402
from shop.db import db, unit_of_work  # noqa: E402
from shop.events.log import record  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def prepare(
    args: argparse.Namespace,
) -> tuple[Any, dict[str, str], list[tuple[int, str]], list[str]]:
    app, env = fresh_app(args.database, args.redis)
    with app.app_context():
        with db.engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO users (email, password_hash, role)"
                " SELECT 'c' || n || '@bench.example', 'x', CASE WHEN n <= %s THEN 'staff'"
                " ELSE 'customer' END FROM generate_series(1, %s) n",
                (args.staff, args.connections),
            )
        rows = db.session.execute(db.text("SELECT id, role FROM users ORDER BY id")).all()
        tokens = [
            create_access_token(str(i), additional_claims={"role": role, "ver": 0})
            for i, role in rows
        ]
    customers = [(i, t) for (i, role), t in zip(rows, tokens, strict=True) if role == "customer"]
    return app, env, customers, tokens


async def client(url: str, token: str, got: dict[int, list[float]], ready: asyncio.Event) -> None:
    async with connect(url, open_timeout=60, ping_interval=None, max_queue=None) as socket_:
        await socket_.send(json.dumps({"action": "auth", "token": token}))
        json.loads(await socket_.recv())
        ready.set()
        async for message in socket_:
            n = json.loads(message)["data"]["n"]
            got.setdefault(n, []).append(time.monotonic())


WARMUP = 20  # events sent first and not counted (each process's first statements compile)


def write_events(app: Any, customers: list[int], rate: float, seconds: float) -> dict[int, Any]:
    """Commit `rate` events a second for `seconds` after WARMUP more; n -> (owner, end of its
    commit), for the counted ones."""
    written: dict[int, Any] = {}
    with app.app_context():
        step, began = 1 / rate, time.monotonic()
        for n in range(-WARMUP, int(rate * seconds)):
            time.sleep(max(0.0, began + (n + WARMUP) * step - time.monotonic()))
            owner = random.choice(customers)
            with unit_of_work():
                record("order.status_changed", {"n": n, "status": "shipped"}, user_id=owner)
            if n >= 0:
                written[n] = (owner, time.monotonic())
    return written


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--staff", type=int, default=5)
    parser.add_argument("--rate", type=float, default=50, help="events committed a second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--database", default="postgresql://postgres@127.0.0.1:5432/shop_bench_realtime"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    app, env, customers, tokens = prepare(args)
    port = free_port()
    env["REALTIME_BIND"] = f"127.0.0.1:{port}"
    service = subprocess.Popen([sys.executable, "realtime.py"], cwd=ROOT, env=env)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                await asyncio.sleep(0.1)
        idle_rss = rss_mb(service.pid)
        url = f"ws://127.0.0.1:{port}/api/v1/ws/notifications"
        got: dict[int, list[float]] = {}
        readies = [asyncio.Event() for _ in tokens]
        started = time.monotonic()
        tasks = []
        for token, ready in zip(tokens, readies, strict=True):
            tasks.append(asyncio.create_task(client(url, token, got, ready)))
            if len(tasks) % 200 == 0:
                await asyncio.sleep(0.05)  # a login wave, not one SYN flood
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 300)
        connected = time.monotonic() - started
        held_rss = rss_mb(service.pid)
        owners = [i for i, _ in customers]
        written = await asyncio.to_thread(write_events, app, owners, args.rate, args.seconds)
        await asyncio.sleep(2)
        peak_rss = rss_mb(service.pid)
        latencies = [
            at - committed for n, (_, committed) in written.items() for at in got.get(n, [])
        ]
        expected = len(written) * (1 + args.staff)
        delivered = sum(len(got.get(n, [])) for n in written)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        service.terminate()
        await asyncio.to_thread(service.wait, 30)
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{len(tokens)} connections ({args.staff} staff) authenticated in {connected:.1f} s; "
        f"realtime RSS {idle_rss:.0f} MB idle, {held_rss:.0f} MB holding them, {peak_rss:.0f} MB "
        f"after {len(written)} events at {args.rate:.0f}/s"
    )
    print(
        f"commit -> delivery: p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms; delivered {delivered} of {expected} "
        f"(each event to its customer and every staff connection)"
    )
    verdict = delivered == expected and cuts[98] < 0.1 and peak_rss < 1024
    print(f"{'PASS' if verdict else 'FAIL'} goal: p99 under 100 ms, under 1 GB, none missing")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
