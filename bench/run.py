"""`make bench`: shop against its ceilings, side by side in one run, with wrk.

Builds a bench database (products, customers, orders over a year; bulk loaded), serves shop
(as deployed, and with its response cache off) and two ceilings with the same gunicorn
settings on 127.0.0.1, and measures:

1. throughput: every scenario after a warm-up, the median of three wrk runs, 32 connections;
2. latency: one client (list, search, filters, reports), p50 and p95 (median of three runs),
   before any write;
3. a sell-out: more buyers than stock on one product (10 s); nothing oversold, stock = ledger;
4. memory: a fresh server's worker RSS after 50,000 and 100,000 mixed requests.

Prints the tables and writes bench/results/latest.json (and products-N.json, which the next
run at another size is compared with). All traffic stays on 127.0.0.1 and every run is bounded.
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
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SECRET_KEY", "bench-secret-key-0123456789-abcdefghijkl")
os.environ.setdefault("JWT_SECRET_KEY", "bench-jwt-secret-0123456789-abcdefghijkl")

from flask import Flask  # noqa: E402
from redis import Redis  # noqa: E402
from sqlalchemy import event, text  # noqa: E402

from bench.data import load, recreate  # noqa: E402
from shop import create_app  # noqa: E402
from shop.auth.models import User  # noqa: E402
from shop.auth.tokens import issue_tokens  # noqa: E402
from shop.db import db, unit_of_work  # noqa: E402
from shop.products import catalog  # noqa: E402
from shop.reports.aggregates import aggregate_day, today  # noqa: E402

# As README recommends for production: sync workers, about 2 x cores.
GUNICORN = [str(ROOT / ".venv/bin/gunicorn"), "--workers", "4", "--log-level", "warning"]
SHIP_TO = {"line1": "1 Bench St", "city": "Loadville", "postal_code": "00000", "country": "US"}
SERVERS = {  # name: (port, WSGI target, extra environment)
    "shop": (8101, "wsgi:app", {}),
    "shop_nocache": (8102, "wsgi:app", {"CACHE_RESPONSES": "false"}),
    "fixed": (8103, "bench.ceilings:fixed_app", {}),
    "sql": (8104, "bench.ceilings:sql_app", {}),
    "shop_fresh": (8105, "wsgi:app", {}),  # for the memory run
}
HOT_IDS = 1000  # cached detail: random ids among the first 1,000 products, warmed first
RSS_STEPS = (50_000, 100_000)


def build(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
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
        timer = time.perf_counter()
        big_day = aggregate_day(today() - timedelta(days=1))
        big_day_seconds = time.perf_counter() - timer
        for n in range(2, 367):
            aggregate_day(today() - timedelta(days=n))
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))  # steady state: autovacuum would have run
        made = {
            name: catalog.create_product(
                None,
                {"sku": sku, "name": name, "price": Decimal(price), "stock": stock},  # type: ignore[arg-type]
            ).id
            for name, sku, price, stock in (
                ("Hot Product", "HOT-1", "9.99", 10_000_000),
                ("Sell-out Product", "SELLOUT-1", "9.99", args.sellout_stock),
                ("Roomy Product", "ROOMY-1", "1.00", 1_000_000_000),
            )
        }
        with unit_of_work():
            user = db.session.query(User).order_by(User.id).first()
            assert user is not None
            user.role = "admin"
            token = issue_tokens(user)["access_token"]
        category = db.session.scalar(text("SELECT category_id FROM products WHERE id = 1"))
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "big_day": {**big_day, "seconds": round(big_day_seconds, 3)},
        "token": token,
        "hot": made["Hot Product"],
        "sellout": made["Sell-out Product"],
        "roomy": made["Roomy Product"],
        "category": category,
        "app": app,
    }


def _statements(app: Flask, call: Callable[[], Any]) -> tuple[list[tuple[str, Any]], bytes]:
    statements: list[tuple[str, Any]] = []

    def listen(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append((statement, json.loads(json.dumps(parameters, default=str))))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", listen)
    try:
        body = call().get_data()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return statements, body


def capture(built: dict[str, Any], env: dict[str, str], workdir: Path) -> dict[str, str]:
    """The exact SQL shop runs, in steady state, for the list, a detail and a checkout; the
    list with its COUNT (a cold total); and the list's bytes for ceiling (a)."""
    served = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"],
            "REDIS_URL": env["REDIS_URL"],
            "CACHE_RESPONSES": False,
            "LOG_LEVEL": "WARNING",
        }
    )
    client = served.test_client()
    headers = {"Authorization": f"Bearer {built['token']}"}
    order = {"items": [{"product_id": built["roomy"], "quantity": 1}], "shipping_address": SHIP_TO}
    calls = {
        "list": lambda: client.get("/api/v1/products"),
        "detail": lambda: client.get("/api/v1/products/2"),
        "checkout": lambda: client.post("/api/v1/orders", headers=headers, json=order),
    }
    captured = {}
    for name, call in calls.items():
        call()  # warm: steady state has its cached list totals
        captured[name], body = _statements(served, call)
        if name == "list":
            (workdir / "list.json").write_bytes(body)
    cold = built["app"].test_client()  # no cache at all: the list runs its COUNT
    captured["list_counted"], _ = _statements(built["app"], lambda: cold.get("/api/v1/products"))
    (workdir / "sql.json").write_text(json.dumps(captured))
    return {
        "BENCH_SQL_FILE": str(workdir / "sql.json"),
        "BENCH_FIXED_FILE": str(workdir / "list.json"),
    }


def serve(env: dict[str, str], names: list[str]) -> list[subprocess.Popen[bytes]]:
    servers = []
    for name in names:
        port, target, extra = SERVERS[name]
        servers.append(
            subprocess.Popen(
                [*GUNICORN, "--bind", f"127.0.0.1:{port}", target],
                cwd=ROOT,
                env={**env, **extra},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    for name in names:
        for _ in range(300):
            try:
                probe = http.client.HTTPConnection("127.0.0.1", SERVERS[name][0], timeout=1)
                probe.request("GET", "/health")
                probe.getresponse().read()
                break
            except OSError:
                time.sleep(0.1)
    return servers


def stop(servers: list[subprocess.Popen[bytes]]) -> None:
    for server in servers:
        server.terminate()
    for server in servers:
        server.wait(timeout=15)


def url(server: str, path: str = "") -> str:
    return f"http://127.0.0.1:{SERVERS[server][0]}{path}"


DONE = (
    "done = function(s, latency, r) "
    'io.write(string.format("P95_US %d\\n", latency:percentile(95))) end'
)


# Adds to one cart line, emptying the cart every 200th request of a thread: a line holds at
# most 1,000 units (more is a 409), and a store's carts do not grow for ever either.
EMPTIED_NOW_AND_THEN = (
    "n = 0\n"
    "request = function()\n"
    "  n = n + 1\n"
    '  if n % 200 == 0 then return wrk.format("DELETE", "/api/v1/cart", nil, "") end\n'
    "  return wrk.format()\n"
    "end"
)


def lua(
    workdir: Path,
    name: str,
    method: str = "GET",
    body: Any = None,
    token: str | None = None,
    request: str | None = None,
) -> Path:
    lines = [f'wrk.method = "{method}"', 'wrk.headers["Content-Type"] = "application/json"', DONE]
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    if body is not None:
        lines.append(f"wrk.body = [[{json.dumps(body)}]]")
    if request:
        lines.append(request)
    script = workdir / f"{name}.lua"
    script.write_text("\n".join(lines) + "\n")
    return script


def random_ids(high: int) -> str:
    return (
        "request = function() return wrk.format(nil, "
        f'"/api/v1/products/" .. math.random(1, {high})) end'
    )


def mixed(products: int, token: str) -> str:
    """Browsing traffic for the memory run: lists, searches, details, suggestions, /auth/me."""
    paths = [
        "/api/v1/products",
        "/api/v1/products?q=bamboo",
        "/api/v1/products?sort=price&page=2",
        "/api/v1/products/suggestions?q=lam",
        "/api/v1/categories",
        "/api/v1/auth/me",
    ]
    return (
        "paths = {" + ", ".join(f'"{p}"' for p in paths) + "}\n"
        "n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        f'  if n % 2 == 0 then return wrk.format(nil, "/api/v1/products/" .. '
        f"math.random(1, {products})) end\n"
        f'  return wrk.format(nil, paths[n % #paths + 1], {{Authorization = "Bearer {token}"}})\n'
        "end"
    )


def wrk(
    target: str, script: Path, seconds: int, connections: int, threads: int = 2
) -> dict[str, Any]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
               "--timeout", "10s", "-s", str(script), target]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30).stdout

    def latency(percentile: str) -> float:
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    def number(pattern: str) -> int:
        match = re.search(pattern, output)
        return int(match.group(1)) if match else 0

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        output)  # fmt: skip
    return {
        "rps": float(rate.group(1)) if rate else 0.0,
        "p50_ms": latency("50"),
        "p95_ms": number(r"P95_US (\d+)") / 1000,
        "p99_ms": latency("99"),
        "requests": number(r"(\d+) requests in"),
        "errors": number(r"Non-2xx or 3xx responses: (\d+)")
        + (sum(int(g) for g in sockets.groups()) if sockets else 0),
    }


def throughput(target: str, script: Path, args: argparse.Namespace) -> dict[str, Any]:
    wrk(target, script, args.warmup, args.connections)
    runs = [wrk(target, script, args.seconds, args.connections) for _ in range(3)]
    middle = sorted(runs, key=lambda r: r["rps"])[1]
    return {**middle, "requests": sum(r["requests"] for r in runs)}


def single_client(target: str, script: Path, args: argparse.Namespace) -> dict[str, Any]:
    """p50 and p95 of one client: the median of three runs (one run's p95 moves with whatever
    else the machine does, autovacuum included)."""
    wrk(target, script, 1, 1, threads=1)
    runs = [wrk(target, script, args.seconds, 1, threads=1) for _ in range(3)]
    middle = sorted(runs, key=lambda r: r["p95_ms"])[1]
    return {k: middle[k] for k in ("p50_ms", "p95_ms", "errors")} | {
        "requests": sum(r["requests"] for r in runs)
    }


def warm(server: str, paths: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", SERVERS[server][0], timeout=30)
    for path in paths:
        connection.request("GET", path)
        connection.getresponse().read()


def worker_rss(port: int) -> list[int]:
    """RSS (KiB) of the gunicorn workers listening on `port`."""
    rss = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = Path(f"/proc/{pid}/status").read_text()
            parent = re.search(r"PPid:\s+(\d+)", status)
            ours = f"127.0.0.1:{port}" in cmdline and "gunicorn" in cmdline and parent
            if ours and b"gunicorn" in Path(f"/proc/{parent.group(1)}/cmdline").read_bytes():
                rss.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)))  # type: ignore[union-attr]
        except OSError:
            continue
    return sorted(rss)


def memory_run(env: dict[str, str], script: Path) -> dict[str, Any]:
    """A fresh server: worker RSS after start, then after 50,000 and 100,000 requests."""
    servers = serve(env, ["shop_fresh"])
    port = SERVERS["shop_fresh"][0]
    try:
        result: dict[str, Any] = {"start": worker_rss(port)}
        served = 0
        for step in RSS_STEPS:
            while served < step:
                served += wrk(url("shop_fresh"), script, 10, 32)["requests"]
            result[f"after_{step}"] = {"requests": served, "rss_kib": worker_rss(port)}
    finally:
        stop(servers)
    low, high = (sum(result[f"after_{s}"]["rss_kib"]) for s in RSS_STEPS)
    result["max_mib"] = round(max(result[f"after_{RSS_STEPS[1]}"]["rss_kib"]) / 1024, 1)
    result["growth_pct"] = round((high - low) / low * 100, 2)
    return result


def ledger_check(app: Flask, product_id: int, stock: int) -> dict[str, Any]:
    with app.app_context():
        row = db.session.execute(
            text(
                "SELECT p.stock, (SELECT sum(quantity) FROM inventory_transactions t "
                "WHERE t.product_id = p.id), (SELECT coalesce(sum(quantity), 0) FROM order_items "
                "i WHERE i.product_id = p.id) FROM products p WHERE p.id = :id"
            ),
            {"id": product_id},
        ).one()
    return {
        "stock_at_start": stock,
        "stock_left": row[0],
        "ledger_sum": int(row[1]),
        "units_ordered": int(row[2]),
        "oversold": max(0, int(row[2]) - stock),
        "ok": int(row[2]) + row[0] == stock and row[0] == int(row[1]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--sellout-stock", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/shop_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--skip-memory", action="store_true", help="no 100,000-request run")
    args = parser.parse_args()

    env = {
        **os.environ,
        "DATABASE_URL": args.database,
        "REDIS_URL": args.redis,
        "LOG_LEVEL": "WARNING",
        "SHOP_ENV": "production",
        "PYTHONPATH": str(ROOT),
    }
    Redis.from_url(args.redis).flushdb()
    print(f"building: {args.products:,} products, {args.customers:,} customers, "
          f"{args.orders:,} orders", file=sys.stderr)  # fmt: skip
    built = build(args, env)
    workdir = Path(tempfile.mkdtemp(prefix="shop-bench-"))
    env.update(capture(built, env, workdir))
    token = built["token"]
    get, authed = lua(workdir, "get"), lua(workdir, "authed", token=token)
    year = (date.today() - timedelta(days=364)).isoformat()
    reports = {
        "report: dashboard": "/api/v1/reports/dashboard",
        "report: sales by day, 30 days": "/api/v1/reports/sales",
        "report: sales by month, a year": f"/api/v1/reports/sales?period=month&start={year}",
        "report: top products, a year": f"/api/v1/reports/top-products?start={year}",
        "report: order status": "/api/v1/reports/order-status",
        "report: one product": "/api/v1/reports/products/1",
    }
    order = {"items": [{"product_id": built["hot"], "quantity": 1}], "shipping_address": SHIP_TO}
    ceiling_a, list_sql, list_counted = "fixed bytes", "list SQL", "list SQL + COUNT"
    scenarios: list[tuple[str, str, Path, list[str]]] = [
        # (name, url, script, ceilings: the first is the one the target is judged against)
        (ceiling_a, url("fixed", "/api/v1/products"), get, []),
        (list_sql, url("sql", "/sql/list"), get, []),
        (list_counted, url("sql", "/sql/list_counted"), get, []),
        ("detail SQL", url("sql", "/sql/detail"), get, []),
        ("checkout SQL", url("sql", "/sql/checkout"), lua(workdir, "post", "POST", {}), []),
        ("list, cached", url("shop", "/api/v1/products"), get, [ceiling_a]),
        ("list, uncached", url("shop_nocache", "/api/v1/products"), get,
         [list_counted, list_sql]),
        ("detail, cached", url("shop"), lua(workdir, "hot", request=random_ids(HOT_IDS)),
         [ceiling_a]),
        ("detail, uncached", url("shop_nocache"),
         lua(workdir, "ids", request=random_ids(args.products)), ["detail SQL"]),
        ("search q=bamboo, uncached", url("shop_nocache", "/api/v1/products?q=bamboo"), get, []),
        ("category + price sort, uncached",
         url("shop_nocache", f"/api/v1/products?category={built['category']}&sort=price"),
         get, []),
        ("GET /auth/me", url("shop", "/api/v1/auth/me"), authed, []),
        ("POST /cart/items", url("shop", "/api/v1/cart/items"),
         lua(workdir, "cart", "POST", {"product_id": built["roomy"], "quantity": 1}, token,
             request=EMPTIED_NOW_AND_THEN), []),
        ("POST /orders, hot product", url("shop", "/api/v1/orders"),
         lua(workdir, "order", "POST", order, token), ["checkout SQL"]),
        *((name, url("shop_nocache", path), authed, []) for name, path in reports.items()),
    ]  # fmt: skip
    latency = {
        "list": (url("shop_nocache", "/api/v1/products"), get),
        "search q=bamboo": (url("shop_nocache", "/api/v1/products?q=bamboo"), get),
        "category + price sort": (
            url("shop_nocache", f"/api/v1/products?category={built['category']}&sort=price"),
            get,
        ),
        **{name: (url("shop_nocache", path), authed) for name, path in reports.items()},
    }
    servers = serve(env, ["shop", "shop_nocache", "fixed", "sql"])
    results: dict[str, dict[str, Any]] = {}
    single: dict[str, dict[str, Any]] = {}
    try:
        # Latency first, on the database as built (vacuumed): the write scenarios leave dead
        # rows and set autovacuum going, which is a different measurement.
        for name, (target, script) in latency.items():
            print(f"  one client: {name} ...", file=sys.stderr)
            single[name] = single_client(target, script, args)
        warm("shop", [f"/api/v1/products/{n}" for n in range(1, HOT_IDS + 1)])
        for name, target, script, _ceilings in scenarios:
            print(f"  {name} ...", file=sys.stderr)
            results[name] = throughput(target, script, args)
        print("  sell-out ...", file=sys.stderr)
        buy = {**order, "items": [{"product_id": built["sellout"], "quantity": 1}]}
        script = lua(workdir, "sellout", "POST", buy, token)
        run = wrk(url("shop", "/api/v1/orders"), script, 10, 32)
        sellout: dict[str, Any] = {"requests": run["requests"], "refused": run["errors"]}
    finally:
        stop(servers)
    sellout.update(ledger_check(built["app"], built["sellout"], args.sellout_stock))
    hot = ledger_check(built["app"], built["hot"], 10_000_000)
    browsing = lua(workdir, "mixed", request=mixed(args.products, token))
    memory = {} if args.skip_memory else memory_run(env, browsing)

    for name, _url, _script, ceilings in scenarios:
        if ceilings:
            results[name]["ratios"] = {
                c: round(results[name]["rps"] / results[c]["rps"], 2) for c in ceilings
            }
    report = {
        "settings": {
            "gunicorn": " ".join(GUNICORN[1:]),
            "wrk": f"-t2 -c{args.connections} -d{args.seconds}s x3 (median), "
            f"warm-up {args.warmup}s; one client: -t1 -c1 -d{args.seconds}s x3 (median)",
            "products": args.products,
            "orders": args.orders,
        },
        "build_seconds": built["seconds"],
        "aggregate_big_day": built["big_day"],
        "throughput": results,
        "one_client": single,
        "sellout": sellout,
        "hot_product_ledger": hot,
        "memory": memory,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(report, indent=2))
    (out / f"products-{args.products}.json").write_text(json.dumps(report, indent=2))
    print_report(report, out)
    return 0 if sellout["ok"] and hot["ok"] else 1


def print_report(report: dict[str, Any], out: Path) -> None:
    print(f"\n{'scenario':34} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}  ratio")
    for name, r in report["throughput"].items():
        ratios = "; ".join(f"{v:.2f} of {c}" for c, v in r.get("ratios", {}).items())
        print(f"{name:34} {r['rps']:8.0f} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f} "
              f"{r['errors']:6d}  {ratios}")  # fmt: skip
    products = report["settings"]["products"]
    base_file = out / "products-10000.json"
    base = {}
    if products != 10_000 and base_file.exists():
        base = json.loads(base_file.read_text())["one_client"]
    versus_base = "  p95 vs 10,000 products" if base else ""
    print(f"\none client{'':24} {'p50 ms':>7} {'p95 ms':>7}{versus_base}")
    for name, r in report["one_client"].items():
        versus = f"  {r['p95_ms'] / base[name]['p95_ms']:.2f}x" if name in base else ""
        print(f"{name:34} {r['p50_ms']:7.1f} {r['p95_ms']:7.1f}{versus}")
    print(f"\nsell-out: {json.dumps(report['sellout'])}")
    print(f"hot product: {json.dumps(report['hot_product_ledger'])}")
    if report["memory"]:
        print(f"memory: {json.dumps(report['memory'])}")
    big_day = json.dumps(report["aggregate_big_day"])
    print(f"build: {report['build_seconds']} s; big day aggregated: {big_day}")
    print("JSON: bench/results/latest.json")


if __name__ == "__main__":
    sys.exit(main())
