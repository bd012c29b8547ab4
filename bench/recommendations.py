"""Issue 20's figures: GET /recommendations/user at one client (p50, p95) for customers with a
history and for newcomers (the cold start), and product-detail throughput with view recording
on against off (the same requests, X-Session-ID sent; TRACK_BEHAVIOUR=false on the second
server), on a store built by `flask seed`'s generators (products, customers, orders with their
interactions) and the `recommendations` job; then the `interactions` job writing the backlog
the throughput runs left.

    .venv/bin/python bench/recommendations.py --products 100000 --customers 10000 --orders 50000

Prints one JSON document (the build's and the job's seconds too) and the goals with PASS or
FAIL: p95 under 20 ms, recording within 10 % of not recording. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis import Redis
from sqlalchemy import select, text

from bench import recs_data, run
from bench.data import app_on, fresh_app
from shop.auth.models import User
from shop.auth.tokens import issue_tokens
from shop.db import db, unit_of_work
from shop.recommendations import services
from shop.recommendations.jobs import refresh_recommendations
from shop.recommendations.models import Algorithm
from shop.reports.behaviour import flush_interactions
from shop.security import Role
from shop.seed import _generate_customers, _generate_orders, _generate_products

P95_GOAL_MS = 20.0
RECORDING_GOAL = 0.90  # recording's throughput at least this share of not recording's
TOKENS = 200
HOT_IDS = 1000
SESSION = "bench-session-0123456789"


def add_servers(port: int) -> None:
    run.SERVERS.update(
        {
            "recording": (port, "wsgi:app", {"TRACK_BEHAVIOUR": "true"}),
            "not_recording": (port + 1, "wsgi:app", {"TRACK_BEHAVIOUR": "false"}),
        }
    )


def build(args: argparse.Namespace) -> tuple[Any, dict[str, str], dict[str, Any]]:
    figures: dict[str, Any] = {}
    if args.reuse:  # the database an earlier run built, measured again
        app, env = app_on(args.database, args.redis, SHOP_ENV="production")
    else:
        app, env = fresh_app(args.database, args.redis, SHOP_ENV="production")
    with app.app_context():
        if not args.reuse:
            started = time.perf_counter()
            if args.bulk:
                figures["build"] = recs_data.build(args.products, args.customers)
            else:
                _generate_products(args.products)
                _generate_customers(args.customers)
                _generate_orders(args.orders)
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
            figures["build_seconds"] = round(time.perf_counter() - started, 1)
        if args.job:
            figures["job"] = refresh_recommendations()
        figures["interactions"] = db.session.scalar(text("SELECT count(*) FROM interactions"))
        db.session.execute(text("DELETE FROM users WHERE email LIKE 'newcomer%@example.com'"))
        db.session.commit()
        with unit_of_work():
            having = list(
                db.session.scalars(
                    text("SELECT DISTINCT user_id FROM user_recommendations ORDER BY user_id")
                )
            )
            rng = random.Random(3)
            chosen = rng.sample(having, min(TOKENS, len(having)))
            users = db.session.scalars(select(User).where(User.id.in_(chosen))).all()
            figures["tokens"] = [issue_tokens(u)["access_token"] for u in users]
            figures["token_user_ids"] = [u.id for u in users]
            newcomers = [
                User(email=f"newcomer{n}@example.com", password_hash="x", role=Role.CUSTOMER)
                for n in range(20)
            ]
            db.session.add_all(newcomers)
            db.session.flush()
            figures["newcomer_tokens"] = [issue_tokens(u)["access_token"] for u in newcomers]
    env["PYTHONPATH"] = str(run.ROOT)
    return app, env, figures


def token_script(workdir: Path, name: str, tokens: list[str], path: str) -> Path:
    listed = ", ".join(f'"{t}"' for t in tokens)
    request = (
        f"tokens = {{{listed}}}\n"
        "request = function()\n"
        '  wrk.headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]\n'
        f'  return wrk.format("GET", "{path}")\n'
        "end"
    )
    return run.lua(workdir, name, request=request)


def one_client(target: str, script: Path, seconds: int) -> dict[str, Any]:
    run.wrk(target, script, 2, 1, threads=1)
    runs = [run.wrk(target, script, seconds, 1, threads=1) for _ in range(3)]
    middle = sorted(runs, key=lambda r: r["p95_ms"])[1]
    return {k: middle[k] for k in ("p50_ms", "p95_ms")} | {
        k: sum(r[k] for r in runs) for k in ("requests", "errors")
    }


def explain(app: Any, user_token_ids: list[int]) -> list[str]:
    """EXPLAIN ANALYZE of the stored-list statement for one bench customer (the plan must read
    the list and each product by index)."""
    stored, _ = services._user_statements()
    with app.app_context():
        compiled = stored.compile(db.engine)
        params = {"user_id": user_token_ids[0], "algorithm": Algorithm.HYBRID.value, "limit": 10}
        sql = str(compiled)
        bound = {**compiled.params, **params}
        cursor = db.session.connection().connection.cursor()
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", bound)
        plan = [row[0] for row in cursor.fetchall()]
        db.session.rollback()
    return plan


def measure_latency(figures: dict[str, Any], workdir: Path, args: argparse.Namespace) -> None:
    path = "/api/v1/recommendations/user"
    figures["user_with_history"] = one_client(
        run.url("recording"), token_script(workdir, "history", figures["tokens"], path),
        args.seconds,
    ) | {"load_average": os.getloadavg()[0]}  # fmt: skip
    figures["user_cold_start"] = one_client(
        run.url("recording"),
        token_script(workdir, "newcomer", figures["newcomer_tokens"], path),
        args.seconds,
    ) | {"load_average": os.getloadavg()[0]}
    figures["product_lists"] = one_client(
        run.url("recording"),
        run.lua(workdir, "product-lists", request=(
            "request = function() return wrk.format(nil, "
            f'"/api/v1/recommendations/product/" .. math.random(1, {HOT_IDS})) end'
        )),
        args.seconds,
    ) | {"load_average": os.getloadavg()[0]}  # fmt: skip


def measure_detail(figures: dict[str, Any], workdir: Path, args: argparse.Namespace) -> None:
    """Recording on against off, alternated A, B, A, B (the machine's drift hits both alike):
    each round's ratio, and their median."""
    detail = run.lua(
        workdir, "detail", request=run.random_ids(HOT_IDS), headers={"X-Session-ID": SESSION}
    )
    for server in ("recording", "not_recording"):  # every hot answer cached first
        run.warm(server, [f"/api/v1/products/{n}" for n in range(1, HOT_IDS + 1)])
        run.wrk(run.url(server), detail, 3, args.connections)
    rounds = []
    for _ in range(args.rounds):
        on = run.wrk(run.url("recording"), detail, args.seconds, args.connections)
        off = run.wrk(run.url("not_recording"), detail, args.seconds, args.connections)
        rounds.append(
            {
                "recording_rps": on["rps"],
                "not_recording_rps": off["rps"],
                "ratio": round(on["rps"] / off["rps"], 3) if off["rps"] else None,
                "errors": on["errors"] + off["errors"],
                "load_average": round(os.getloadavg()[0], 2),
            }
        )
    figures["detail"] = {
        "rounds": rounds,
        "median_ratio": statistics.median(r["ratio"] or 0.0 for r in rounds),
        "recording_rps": statistics.median(r["recording_rps"] for r in rounds),
        "not_recording_rps": statistics.median(r["not_recording_rps"] for r in rounds),
    }


def measure_flush(app: Any, figures: dict[str, Any], args: argparse.Namespace) -> None:
    """The `interactions` job writing the backlog the runs left."""
    with app.app_context():
        backlog = Redis.from_url(args.redis).llen("shop:tracking:facts")
        started = time.perf_counter()
        written = 0
        while True:
            done = flush_interactions()
            written += done["interactions"]
            if not done["pending"]:
                break
        seconds = time.perf_counter() - started
        rate = round(written / seconds) if seconds else None
        figures["flush"] = {"facts": backlog, "written": written, "seconds": round(seconds, 1),
                            "per_second": rate}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument(
        "--bulk",
        action="store_true",
        help="build in SQL (bench/recs_data.py; --orders unused), no job run",
    )
    parser.add_argument(
        "--job",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the recommendations job after the build (default: not --bulk)",
    )
    parser.add_argument(
        "--measure", default="latency,detail,flush", help="comma-separated: latency, detail, flush"
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="of the on/off throughput pair")
    parser.add_argument("--port", type=int, default=8121, help="the first of the two servers'")
    parser.add_argument(
        "--database", default="postgresql://postgres@127.0.0.1:5432/shop_bench_recs"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--reuse", action="store_true", help="measure the last run's database")
    args = parser.parse_args()
    if args.job is None:
        args.job = not args.bulk and not args.reuse
    measures = set(args.measure.split(","))
    add_servers(args.port)
    Redis.from_url(args.redis).flushdb()
    print(
        f"building: {args.products:,} products, {args.customers:,} customers, "
        f"{args.orders:,} orders",
        file=sys.stderr,
    )
    app, env, figures = build(args)
    figures["serving_plan"] = explain(app, figures.pop("token_user_ids"))
    workdir = Path(tempfile.mkdtemp(prefix="shop-bench-recs-"))
    servers = run.serve(env, ["recording", "not_recording"], workdir)
    try:
        if "latency" in measures:
            measure_latency(figures, workdir, args)
        if "detail" in measures:
            measure_detail(figures, workdir, args)
    finally:
        try:
            run.stop(servers)
        except subprocess.TimeoutExpired:  # a loaded machine: no figure is lost for it
            for server in servers:
                server.kill()
    if "flush" in measures:
        measure_flush(app, figures, args)
    del figures["tokens"], figures["newcomer_tokens"]
    print(json.dumps(figures, indent=2))
    verdicts = {}
    if "latency" in measures:
        for name, label in (("user_with_history", "history"), ("user_cold_start", "cold start")):
            verdicts[f"p95 GET /recommendations/user < {P95_GOAL_MS:g} ms ({label})"] = (
                figures[name]["p95_ms"] < P95_GOAL_MS
            )
    if "detail" in measures:
        verdicts["product detail recording views within 10 % of not"] = (
            figures["detail"]["median_ratio"] >= RECORDING_GOAL
        )
    errors = sum(
        figures[name]["errors"]
        for name in ("user_with_history", "user_cold_start", "product_lists")
        if name in figures
    ) + sum(r["errors"] for r in figures.get("detail", {}).get("rounds", []))
    for goal, ok in verdicts.items():
        print(f"{'PASS' if ok else 'FAIL'}  {goal}")
    if errors:  # a 404 or a socket error is not a measured answer: the figures are invalid
        print(f"INVALID  {errors} non-2xx/3xx answers or socket errors in the runs")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
