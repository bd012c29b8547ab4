"""`make bench-catalog`: issue 16's catalog figures at scale (1,000,000 products by default).

1. Facets: `GET /products?q=WORD&facets=category,price`, one client in process (the Flask
   test client: no network, no gunicorn) with no cache at all (NullCache), so every answer is
   computed: the ranking, the count and both facets. p50 and p95 over the words of the demo
   generator's vocabulary, three times each (each word matches 3 to 8 % of the catalog), the
   same without facets, and two-word searches (a material and a noun) with facets; with the
   median number of matches of each.
2. Export: `GET /products/export?format=csv` streamed to nothing; the peak RSS of this process
   grows by what the stream holds, not by the catalog's size (the figure: peak RSS before and
   after, and rows per second).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench.data import app_on, fresh_app  # noqa: E402
from shop.auth.models import User  # noqa: E402
from shop.auth.tokens import issue_tokens  # noqa: E402
from shop.db import db, unit_of_work  # noqa: E402
from shop.products.models import Product  # noqa: E402
from shop.security import Role  # noqa: E402
from shop.seed import MATERIALS, NOUNS, _generate_customers, _generate_products  # noqa: E402

DATABASE = "postgresql://postgres@127.0.0.1:5432/shop_bench_catalog"
REDIS = "redis://127.0.0.1:6379/9"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 1),
        "n": len(ordered),
    }


def load(products: int) -> str:
    """`products` from the demo generator and one admin (their token), vacuumed."""
    _generate_products(products)
    _generate_customers(1)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    return admin_token()


def admin_token() -> str:
    with unit_of_work():
        user = db.session.query(User).order_by(User.id).first()
        assert user is not None
        user.role = Role.ADMIN.value
        return str(issue_tokens(user)["access_token"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument(
        "--again", action="store_true", help="measure the catalog an earlier run left (no load)"
    )
    args = parser.parse_args()
    if args.again:
        app, _ = app_on(DATABASE, REDIS, CACHE_TYPE="NullCache")
        with app.app_context():
            args.products = db.session.scalar(select(func.count()).select_from(Product))
    else:
        app, _ = fresh_app(DATABASE, REDIS, CACHE_TYPE="NullCache")
    started = time.perf_counter()
    with app.app_context():
        token = load(args.products) if not args.again else admin_token()
    loaded = round(time.perf_counter() - started, 1)
    client = app.test_client()
    words = sorted({w.lower() for w in (*MATERIALS, *NOUNS)})
    # A material and a noun: a narrower search (about 1 in 360 products), as a shopper types.
    pairs = [f"{m.lower()}+{n.lower()}" for m, n in zip(MATERIALS * 3, NOUNS * 2, strict=False)]
    figures: dict[str, object] = {"products": args.products, "load_seconds": loaded}
    for name, queries, extra in (
        ("one word + facets", words * 3, "&facets=category,price"),
        ("one word", words * 3, ""),
        ("two words + facets", pairs * 3, "&facets=category,price"),
    ):
        samples, matched = [], []
        for query in queries:
            begun = time.perf_counter()
            response = client.get(f"/api/v1/products?q={query}{extra}")
            samples.append(time.perf_counter() - begun)
            assert response.status_code == 200, response.json
            matched.append(response.json["total"])
        figures[f"search, {name}"] = {
            **percentiles(samples),
            "matches_median": statistics.median(matched),
        }
    before = peak_rss_mb()
    begun = time.perf_counter()
    response = client.get(
        "/api/v1/products/export?format=csv", headers={"Authorization": f"Bearer {token}"}
    )
    rows = sum(chunk.count(b"\n") for chunk in response.response) - 1
    seconds = time.perf_counter() - begun
    figures["export"] = {
        "rows": rows,
        "seconds": round(seconds, 1),
        "rows_per_s": round(rows / seconds),
        "peak_rss_mb_before": round(before),
        "peak_rss_mb_after": round(peak_rss_mb()),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
