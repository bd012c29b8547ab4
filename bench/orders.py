"""POST /orders throughput on one hot product under gunicorn, and an oversell check.

    .venv/bin/python bench/orders.py [--clients 32] [--stock 2000] [--workers 4]

Builds a fresh PostgreSQL database (shop_bench), serves it with gunicorn on 127.0.0.1, lets
--clients threads order the hot product (one unit each, own customer each, keep-alive) until
it sells out, then checks: orders created == stock sold, stock == 0, stock == ledger sum.
Traffic goes only to 127.0.0.1; the run is bounded by --stock and --seconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shop import create_app  # noqa: E402
from shop.auth.services import issue_tokens  # noqa: E402
from shop.db import unit_of_work  # noqa: E402
from shop.extensions import db  # noqa: E402
from shop.products import services as catalog  # noqa: E402
from shop.seed import _generate_customers  # noqa: E402

SHIP_TO = {"line1": "1 Bench St", "city": "Loadville", "postal_code": "00000", "country": "US"}


def recreate(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def prepare(env: dict[str, str], clients: int, stock: int) -> tuple[int, list[str]]:
    from flask_migrate import upgrade

    from shop.auth.models import User

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"],
            "REDIS_URL": env["REDIS_URL"],
            "LOG_LEVEL": "WARNING",
        }
    )
    with app.app_context():
        upgrade()
        _generate_customers(clients)
        product = catalog.create_product(
            None,
            {  # type: ignore[arg-type]
                "sku": "HOT-1",
                "name": "Hot Product",
                "price": Decimal("9.99"),
                "stock": stock,
            },
        )
        tokens = []
        with unit_of_work():
            for user in db.session.query(User).order_by(User.id).limit(clients):
                tokens.append(issue_tokens(user)["access_token"])
        return product.id, tokens


def client_loop(
    port: int, token: str, product_id: int, deadline: float, results: list[tuple[int, float]]
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps(
        {"items": [{"product_id": product_id, "quantity": 1}], "shipping_address": SHIP_TO}
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    while time.monotonic() < deadline:
        started = time.perf_counter()
        connection.request("POST", "/api/v1/orders", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        results.append((response.status, time.perf_counter() - started))
        if response.status == 409:  # sold out
            break
    connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--stock", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/shop_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()

    env = {
        **os.environ,
        "DATABASE_URL": args.database,
        "REDIS_URL": args.redis,
        "LOG_LEVEL": "WARNING",
        "SHOP_ENV": "production",
        "SECRET_KEY": "bench-secret-key-0123456789-abcdefghijkl",
        "JWT_SECRET_KEY": "bench-jwt-secret-0123456789-abcdefghijkl",
    }
    os.environ.update({k: env[k] for k in ("SECRET_KEY", "JWT_SECRET_KEY")})
    recreate(args.database)
    subprocess.run(
        [sys.executable, "-c", f"import redis; redis.Redis.from_url('{args.redis}').flushdb()"],
        check=True,
    )
    product_id, tokens = prepare(env, args.clients, args.stock)
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "wsgi:app",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", args.port, timeout=1).request(
                    "GET", "/health"
                )
                break
            except OSError:
                time.sleep(0.1)
        results: list[tuple[int, float]] = []
        deadline = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=client_loop, args=(args.port, t, product_id, deadline, results))
            for t in tokens
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=10)

    created = [latency for status, latency in results if status == 201]
    statuses = {s: sum(1 for r in results if r[0] == s) for s in {r[0] for r in results}}
    engine = create_engine(args.database)
    with engine.connect() as connection:
        stock = connection.scalar(
            text("SELECT stock FROM products WHERE id = :id"), {"id": product_id}
        )
        ledger = connection.scalar(
            text("SELECT sum(quantity) FROM inventory_transactions WHERE product_id = :id"),
            {"id": product_id},
        )
        orders = connection.scalar(text("SELECT count(*) FROM orders"))
    engine.dispose()
    latencies = sorted(created) or [0.0]
    report = {
        "clients": args.clients,
        "workers": args.workers,
        "stock": args.stock,
        "seconds": round(elapsed, 2),
        "statuses": statuses,
        "orders_per_second": round(len(created) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "orders": orders,
        "stock_left": stock,
        "ledger_sum": ledger,
        "oversold": orders - args.stock if orders > args.stock else 0,
    }
    print(json.dumps(report, indent=2))
    ok = orders + stock == args.stock and stock == ledger and stock >= 0
    print("OK: nothing oversold, stock equals the ledger" if ok else "FAIL: stock drift")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
