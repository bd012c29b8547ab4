"""`make bench-import`: a catalog CSV of 100,000 rows (products, a tenth of them selling by two
variants, 40 categories, stock from 0 to 200) imported into a fresh database by the job's own
code (`imports.run_import`, what a worker and `flask products import` run), then the same
file again (every row unchanged), then the export of that catalog with its peak memory.

Prints rows per second and seconds for each; the contract is 100,000 rows in under a minute.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
import time
import tracemalloc
from pathlib import Path

from redis import Redis
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.data import fresh_app  # noqa: E402
from shop.db import db  # noqa: E402
from shop.products import imports, transfer  # noqa: E402
from shop.products.models import Product, ProductVariant, StockMovement  # noqa: E402

CEILING = 60.0  # seconds for 100,000 rows (API.md)


def catalog_csv(rows: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    categories = [f"Department {d} > Aisle {a}" for d in range(8) for a in range(5)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(transfer.COLUMNS)
    written, n = 0, 0
    while written < rows:
        n += 1
        sku, price = f"BENCH-{n:07d}", rng.randint(100, 50_000)
        compare_at = f"{price * 1.2 / 100:.2f}" if rng.random() < 0.2 else ""
        category, featured = rng.choice(categories), rng.random() < 0.05
        variants = 2 if n % 10 == 0 and rows - written >= 3 else 0
        writer.writerow([sku, "", f"Product {n} {rng.choice(['blue', 'red', 'oak'])}",
                         category, f"{price / 100:.2f}", compare_at, rng.randint(0, 200), 5,
                         True, featured])  # fmt: skip
        for size in ("S", "L")[:variants]:
            writer.writerow([f"{sku}-{size}", sku, size, category, f"{price / 100:.2f}", "",
                             rng.randint(0, 100), 5, True, featured])  # fmt: skip
        written += 1 + variants
    return out.getvalue().encode()


def timed_import(data: bytes, label: str) -> float:
    started = time.perf_counter()
    job = imports.queue_import(None, data, f"{label}.csv", dry_run=False, dispatch=False)
    summary = imports.run_import(job.id)
    seconds = time.perf_counter() - started
    assert summary is not None and summary["failed"] == 0, summary
    rows = summary["processed"]
    print(f"{label:10} {rows:>7} rows in {seconds:6.1f} s: {rows / seconds:7.0f} rows/s "
          f"(created {summary['created']}, updated {summary['updated']}, "
          f"unchanged {summary['unchanged']})")  # fmt: skip
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--database", default="postgresql://postgres@127.0.0.1:5432/shop_bench_import"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    app, _ = fresh_app(args.database, args.redis)
    Redis.from_url(args.redis).flushdb()
    data = catalog_csv(args.rows)
    print(f"catalog import: {args.rows} rows, {len(data) / 2**20:.1f} MiB")
    with app.app_context():
        first = timed_import(data, "new")
        timed_import(data, "unchanged")
        counted = [
            db.session.scalar(select(func.count()).select_from(model))
            for model in (Product, ProductVariant, StockMovement)
        ]
        print("products {}, variants {}, ledger rows {}".format(*counted))
        db.session.remove()
        tracemalloc.start()
        started = time.perf_counter()
        size = sum(len(chunk) for chunk in transfer.export_csv())
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"export     {size / 2**20:.1f} MiB in {seconds:.1f} s, "
              f"peak Python memory {peak / 2**20:.1f} MiB")  # fmt: skip
    Redis.from_url(args.redis).flushdb()
    ceiling = CEILING * args.rows / 100_000
    verdict = "ok" if first < ceiling else "SLOW"
    print(f"{verdict}: {args.rows} new rows in {first:.1f} s (ceiling {ceiling:.0f} s)")
    return 0 if first < ceiling else 1


if __name__ == "__main__":
    sys.exit(main())
