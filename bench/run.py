"""`make bench`: shop against its ceilings, side by side in one run, with wrk.

Builds a bench database (products, customers, orders over a year; bulk loaded), serves shop
(cache on, and cache off) and two ceilings with the same gunicorn settings on 127.0.0.1,
runs every scenario after a warm-up as the median of three wrk runs, and prints one table
plus bench/results/latest.json. All traffic stays on 127.0.0.1 and every run is bounded.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SECRET_KEY", "bench-secret-key-0123456789-abcdefghijkl")
os.environ.setdefault("JWT_SECRET_KEY", "bench-jwt-secret-0123456789-abcdefghijkl")

from sqlalchemy import event, text  # noqa: E402

from bench.reports import load, recreate  # noqa: E402
from shop import create_app  # noqa: E402
from shop.auth.models import User  # noqa: E402
from shop.auth.services import issue_tokens  # noqa: E402
from shop.db import unit_of_work  # noqa: E402
from shop.extensions import db  # noqa: E402
from shop.products import services as catalog  # noqa: E402

GUNICORN = [str(ROOT / ".venv/bin/gunicorn"), "--workers", "4", "--log-level", "warning"]
SHIP_TO = {"line1": "1 Bench St", "city": "Loadville", "postal_code": "00000", "country": "US"}
PORTS = {"shop": 8101, "shop_nocache": 8102, "fixed": 8103, "sql": 8104}


def build(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    from shop.reports.services import aggregate_day, today

    recreate(env["DATABASE_URL"])
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"],
            "REDIS_URL": None,
            "CACHE_TYPE": "NullCache",
            "LOG_LEVEL": "WARNING",
        }
    )
    started = time.perf_counter()
    load(app, args.orders, products=args.products, customers=args.customers)
    with app.app_context():
        for n in range(1, 367):
            aggregate_day(today() - timedelta(days=n))
        hot = catalog.create_product(
            None,
            {  # type: ignore[arg-type]
                "sku": "HOT-1",
                "name": "Hot Product",
                "price": Decimal("9.99"),
                "stock": args.hot_stock,
            },
        )
        roomy = catalog.create_product(
            None,
            {  # type: ignore[arg-type]
                "sku": "ROOMY-1",
                "name": "Roomy Product",
                "price": Decimal("1.00"),
                "stock": 1_000_000_000,
            },
        )
        with unit_of_work():
            user = db.session.query(User).order_by(User.id).first()
            user.role = "admin"
            token = issue_tokens(user)["access_token"]
        category = db.session.scalar(text("SELECT category_id FROM products WHERE id = 1"))
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "token": token,
        "hot": hot.id,
        "roomy": roomy.id,
        "category": category,
        "app": app,
    }


def capture(built: dict[str, Any], workdir: Path) -> dict[str, str]:
    """The exact SQL shop runs for the list, a detail and a checkout, and the list's bytes."""
    app = built["app"]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {built['token']}"}
    captured: dict[str, list[tuple[str, Any]]] = {}
    with app.app_context():
        engine = db.engine
    for name, call in {
        "list": lambda: client.get("/api/v1/products"),
        "detail": lambda: client.get("/api/v1/products/2"),
        "checkout": lambda: client.post(
            "/api/v1/orders",
            headers=headers,
            json={
                "items": [{"product_id": built["roomy"], "quantity": 1}],
                "shipping_address": SHIP_TO,
            },
        ),
    }.items():
        statements: list[tuple[str, Any]] = []

        def listen(
            conn, cursor, statement, parameters, context, executemany, statements=statements
        ):
            statements.append((statement, json.loads(json.dumps(parameters, default=str))))

        event.listen(engine, "before_cursor_execute", listen)
        response = call()
        event.remove(engine, "before_cursor_execute", listen)
        if name == "list":
            (workdir / "list.json").write_bytes(response.get_data())
        captured[name] = statements
    (workdir / "sql.json").write_text(json.dumps(captured))
    return {
        "BENCH_SQL_FILE": str(workdir / "sql.json"),
        "BENCH_FIXED_FILE": str(workdir / "list.json"),
    }


def serve(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    targets = {
        "shop": ("wsgi:app", {}),
        "shop_nocache": ("wsgi:app", {"CACHE_TYPE": "NullCache"}),
        "fixed": ("bench.ceilings:fixed_app", {}),
        "sql": ("bench.ceilings:sql_app", {}),
    }
    servers = []
    for name, (target, extra) in targets.items():
        servers.append(
            subprocess.Popen(
                [*GUNICORN, "--bind", f"127.0.0.1:{PORTS[name]}", target],
                cwd=ROOT,
                env={**env, **extra},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    for name in targets:
        for _ in range(200):
            try:
                probe = http.client.HTTPConnection("127.0.0.1", PORTS[name], timeout=1)
                probe.request("GET", "/health")
                probe.getresponse().read()
                break
            except OSError:
                time.sleep(0.1)
    return servers


def lua(
    workdir: Path,
    name: str,
    method: str = "GET",
    body: Any = None,
    token: str | None = None,
    random_ids: int | None = None,
) -> Path:
    lines = [f'wrk.method = "{method}"', 'wrk.headers["Content-Type"] = "application/json"']
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    if body is not None:
        lines.append(f"wrk.body = [[{json.dumps(body)}]]")
    if random_ids:
        lines.append(
            "request = function() return wrk.format(nil, "
            f'"/api/v1/products/" .. math.random(1, {random_ids})) end'
        )
    script = workdir / f"{name}.lua"
    script.write_text("\n".join(lines) + "\n")
    return script


def wrk(url: str, script: Path | None, seconds: int, connections: int) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 30
                            ).stdout  # fmt: skip

    def latency(percentile: str) -> float:
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    requests = re.search(r"(\d+) requests in", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        output)  # fmt: skip
    return {
        "rps": float(rate.group(1)) if rate else 0.0,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "requests": int(requests.group(1)) if requests else 0,
        "errors": (int(non2xx.group(1)) if non2xx else 0)
        + (sum(int(g) for g in sockets.groups()) if sockets else 0),
    }


def measure(url: str, script: Path | None, args: argparse.Namespace) -> dict[str, float]:
    wrk(url, script, args.warmup, args.connections)
    runs = [wrk(url, script, args.seconds, args.connections) for _ in range(3)]
    middle = sorted(runs, key=lambda r: r["rps"])[1]
    return {**middle, "requests": sum(r["requests"] for r in runs)}


def worker_rss(port: int) -> list[int]:
    """RSS (KiB) of the gunicorn workers listening on `port`."""
    rss = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        parent = re.search(r"PPid:\s+(\d+)", status)
        if f"127.0.0.1:{port}" in cmdline and parent and "gunicorn" in cmdline:
            parent_cmd = Path(f"/proc/{parent.group(1)}/cmdline").read_bytes()
            if b"gunicorn" in parent_cmd:  # a worker, not the arbiter
                rss.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)))  # type: ignore[union-attr]
    return rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--hot-stock", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/shop_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument(
        "--only",
        default="",
        help="comma list: run scenarios whose name "
        "contains one of these words (and their ceilings)",
    )
    args = parser.parse_args()

    env = {
        **os.environ,
        "DATABASE_URL": args.database,
        "REDIS_URL": args.redis,
        "LOG_LEVEL": "WARNING",
        "SHOP_ENV": "production",
        "PYTHONPATH": str(ROOT),
    }
    import redis

    redis.Redis.from_url(args.redis).flushdb()
    print(
        f"building: {args.products} products, {args.customers} customers, {args.orders} orders",
        file=sys.stderr,
    )
    built = build(args, env)
    workdir = Path(tempfile.mkdtemp(prefix="shop-bench-"))
    env.update(capture(built, workdir))
    token, base = built["token"], "http://127.0.0.1:{}"
    shop, nocache = base.format(PORTS["shop"]), base.format(PORTS["shop_nocache"])
    fixed, sql = base.format(PORTS["fixed"]), base.format(PORTS["sql"])
    get = lua(workdir, "get")
    year = (date.today() - timedelta(days=364)).isoformat()
    authed = lua(workdir, "authed", token=token)
    scenarios: list[tuple[str, str, Path | None, str | None]] = [
        # (name, url, script, ceiling name)
        ("ceiling a: fixed bytes", f"{fixed}/api/v1/products", get, None),
        ("ceiling b: list SQL", f"{sql}/sql/list", get, None),
        ("ceiling b: detail SQL", f"{sql}/sql/detail", get, None),
        ("ceiling b: checkout SQL", f"{sql}/sql/checkout", lua(workdir, "post", "POST", {}), None),
        ("list, cached", f"{shop}/api/v1/products", get, "ceiling a: fixed bytes"),
        ("list, uncached", f"{nocache}/api/v1/products", get, "ceiling b: list SQL"),
        (
            "detail, cached",
            shop,
            lua(workdir, "ids", random_ids=args.products),
            "ceiling a: fixed bytes",
        ),
        (
            "detail, uncached",
            nocache,
            lua(workdir, "ids2", random_ids=args.products),
            "ceiling b: detail SQL",
        ),
        ("search q=bamboo", f"{nocache}/api/v1/products?q=bamboo", get, None),
        (
            "category + price sort",
            f"{nocache}/api/v1/products?category={built['category']}&sort=price",
            get,
            None,
        ),
        ("GET /auth/me", f"{shop}/api/v1/auth/me", authed, None),
        (
            "POST /cart/items",
            f"{shop}/api/v1/cart/items",
            lua(workdir, "cart", "POST", {"product_id": built["roomy"], "quantity": 1}, token),
            None,
        ),
        (
            "POST /orders, hot product",
            f"{shop}/api/v1/orders",
            lua(
                workdir,
                "order",
                "POST",
                {
                    "items": [{"product_id": built["hot"], "quantity": 1}],
                    "shipping_address": SHIP_TO,
                },
                token,
            ),
            "ceiling b: checkout SQL",
        ),
        ("report: dashboard", f"{nocache}/api/v1/reports/dashboard", authed, None),
        (
            "report: sales by month, a year",
            f"{nocache}/api/v1/reports/sales?period=month&start={year}",
            authed,
            None,
        ),
        (
            "report: top products, a year",
            f"{nocache}/api/v1/reports/top-products?start={year}",
            authed,
            None,
        ),
        ("report: order status", f"{nocache}/api/v1/reports/order-status", authed, None),
        ("report: one product", f"{nocache}/api/v1/reports/products/1", authed, None),
    ]
    if args.only:
        words = [w.strip() for w in args.only.split(",") if w.strip()]
        chosen = {s[0] for s in scenarios if any(w in s[0] for w in words)}
        chosen |= {s[3] for s in scenarios if s[0] in chosen and s[3]}
        scenarios = [s for s in scenarios if s[0] in chosen]
    servers = serve(env)
    results: dict[str, dict[str, Any]] = {}
    rss_mid: list[int] = []
    try:
        for index, (name, url, script, _ceiling) in enumerate(scenarios):
            print(f"  {name} ...", file=sys.stderr)
            results[name] = measure(url, script, args)
            if index == len(scenarios) // 2:
                rss_mid = worker_rss(PORTS["shop"])
        rss_end = worker_rss(PORTS["shop"])
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=15)

    for name, _url, _script, ceiling in scenarios:
        if ceiling:
            results[name]["ceiling"] = ceiling
            results[name]["ratio"] = round(results[name]["rps"] / results[ceiling]["rps"], 2)
    with built["app"].app_context():
        row = db.session.execute(
            text(
                "SELECT p.stock, (SELECT sum(quantity) FROM inventory_transactions t "
                "WHERE t.product_id = p.id), (SELECT count(*) FROM order_items i "
                "WHERE i.product_id = p.id) FROM products p WHERE p.id = :id"
            ),
            {"id": built["hot"]},
        ).one()
    oversell = {
        "hot_stock": args.hot_stock,
        "stock_left": row[0],
        "ledger_sum": int(row[1]),
        "units_ordered": row[2],
        "oversold": max(0, row[2] - args.hot_stock),
        "ok": row[2] + row[0] == args.hot_stock and row[0] == int(row[1]),
    }
    shop_requests = sum(r["requests"] for n, r in results.items() if not n.startswith("ceiling"))
    report = {
        "settings": {
            "gunicorn": " ".join(GUNICORN[1:]),
            "wrk": f"-t2 -c{args.connections} "
            f"-d{args.seconds}s x3 (median), warm-up {args.warmup}s",
            "products": args.products,
            "orders": args.orders,
        },
        "build_seconds": built["seconds"],
        "scenarios": results,
        "orders_check": oversell,
        "worker_rss_kib": {"midway": rss_mid, "end": rss_end, "requests_served": shop_requests},
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(report, indent=2))
    print(f"\n{'scenario':34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  ratio")
    for name, r in results.items():
        ratio = f"{r['ratio']:.2f} of {r['ceiling']}" if "ratio" in r else ""
        print(
            f"{name:34} {r['rps']:9.1f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} "
            f"{r['errors']:7d}  {ratio}"
        )
    print(f"\norders: {json.dumps(oversell)}")
    print(f"worker RSS (KiB): midway {rss_mid}, end {rss_end}, after {shop_requests} requests")
    print(f"build: {built['seconds']} s; JSON: bench/results/latest.json")
    return 0 if oversell["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
