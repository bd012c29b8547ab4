"""The sale-day mix of `make bench`: what a store is asked on a sale day, and what it costs.

- `MIX`: per 100 requests, by kind: 70 product reads, 15 cart writes, 5 checkouts, 5 account
  reads, 5 staff and report calls; customers' requests spread over many customers' tokens.
- `script`: the wrk Lua that sends it (or a subset of its groups), each request tagged with its
  kind in its X-Request-ID, which shop writes into its access log line.
- `logged_app`: shop as deployed, serving with its access log on (LOG_LEVEL=INFO) and each line
  carrying the number of SQL statements the request ran; `per_kind` reads those lines back:
  p50/p99 per kind from the server's own timings, non-2xx answers, statements per request.
- `database_stats`: the bench database's own counters (pg_stat_database), read before and
  after a run; `database_figures` turns the two readings into figures per request.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import psycopg2
from flask import Flask, g, has_request_context
from sqlalchemy import event
from sqlalchemy.engine import Engine

from shop import create_app

READS = ("product reads", "account reads")  # the browsing subset (the memory run)


class Kind(NamedTuple):
    name: str
    group: str
    per_100: int
    method: str
    path: str  # {placeholders} are drawn at random per request from `script`'s choices
    body: str | None = None  # a key of `script`'s bodies
    who: str | None = None  # "customer" (one of many, at random) or "admin"


MIX = (
    Kind("list", "product reads", 20, "GET", "/api/v1/products?page={page}"),
    Kind("detail", "product reads", 30, "GET", "/api/v1/products/{product}"),
    Kind("search", "product reads", 10, "GET", "/api/v1/products?q={word}"),
    Kind("category", "product reads", 10, "GET",
         "/api/v1/products?category={category}&sort={sort}"),
    Kind("cart-add", "cart writes", 14, "POST", "/api/v1/cart/items", "cart", "customer"),
    # Now and then a cart is emptied: a line holds at most 1,000 units (more is a 409).
    Kind("cart-empty", "cart writes", 1, "DELETE", "/api/v1/cart", None, "customer"),
    Kind("checkout", "checkouts", 5, "POST", "/api/v1/orders", "order", "customer"),
    Kind("me", "account reads", 2, "GET", "/api/v1/auth/me", None, "customer"),
    Kind("own-orders", "account reads", 2, "GET", "/api/v1/orders", None, "customer"),
    Kind("own-events", "account reads", 1, "GET", "/api/v1/events", None, "customer"),
    Kind("report", "staff and reports", 3, "GET", "{report}", None, "admin"),
    Kind("staff-orders", "staff and reports", 2, "GET", "/api/v1/orders?status={status}", None,
         "admin"),
)  # fmt: skip
assert sum(k.per_100 for k in MIX) == 100


def _lua(value: Any) -> str:
    if isinstance(value, range):
        return f"{{lo = {value.start}, hi = {value.stop - 1}}}"
    return "{" + ", ".join(f"[[{v}]]" for v in value) + "}"


def _lua_kind(kind: Kind) -> str:
    body = f"bodies.{kind.body}" if kind.body else "nil"
    return (
        f'  {{name = "{kind.name}", method = "{kind.method}", path = [[{kind.path}]], '
        f'body = {body}, who = "{kind.who or ""}"}},'
    )


def script(
    choices: Mapping[str, Sequence[Any] | range],
    bodies: Mapping[str, Any],
    customers: Sequence[str],
    admin: str,
    groups: Sequence[str] | None = None,
) -> str:
    """The Lua `request` of the mix (only `groups` of it, when given): a fixed shuffled cycle of
    100 slots, so every 100 requests of a wrk thread hold each kind's share; the ids, customers
    and other choices are drawn at random."""
    kinds = [k for k in MIX if groups is None or k.group in groups]
    slots = [n for n, k in enumerate(kinds, 1) for _ in range(k.per_100)]
    random.Random(14).shuffle(slots)
    lines = [
        "choices = {" + ", ".join(f"{n} = {_lua(v)}" for n, v in choices.items()) + "}",
        "bodies = {" + ", ".join(f"{n} = [[{json.dumps(b)}]]" for n, b in bodies.items()) + "}",
        f"customers = {_lua(customers)}",
        f'admin = "{admin}"',
        "slots = {" + ", ".join(map(str, slots)) + "}",
        "kinds = {",
        *(_lua_kind(k) for k in kinds),
        "}",
        """
function draw(name)
  local c = choices[name]
  if c.lo then return tostring(math.random(c.lo, c.hi)) end
  return c[math.random(#c)]
end

-- Each thread draws its own sequence (wrk seeds none) and starts at its own slot.
threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("id", threads)
end
n = 0
init = function()
  math.randomseed(os.time() * 1000 + id)
  n = math.random(0, #slots - 1)
end

request = function()
  n = n + 1
  local kind = kinds[slots[(n - 1) % #slots + 1]]
  local headers = {["X-Request-ID"] = "mix." .. kind.name .. "." .. n .. "." .. math.random(1e9)}
  if kind.who == "customer" then
    headers["Authorization"] = "Bearer " .. customers[math.random(#customers)]
  elseif kind.who == "admin" then
    headers["Authorization"] = "Bearer " .. admin
  end
  if kind.body then headers["Content-Type"] = "application/json" end
  local path = string.gsub(kind.path, "{(%w+)}", draw)
  return wrk.format(kind.method, path, headers, kind.body)
end
""",
    ]
    return "\n".join(lines)


def logged_app() -> Flask:
    """shop as `wsgi:app` serves it, each access log line also carrying `statements`: the SQL
    statements its request sent (a cursor execute each; BEGIN and COMMIT are not counted)."""

    def count(*_: Any) -> None:
        if has_request_context():
            g.bench_statements = g.get("bench_statements", 0) + 1

    def tag(record: logging.LogRecord) -> bool:
        if has_request_context():
            record.statements = g.get("bench_statements", 0)
        return True

    event.listen(Engine, "before_cursor_execute", count)
    app = create_app()
    logging.getLogger("shop.access").addFilter(tag)
    return app


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] if ordered else float("nan")


def per_kind(log: Path, offset: int) -> dict[str, dict[str, Any]]:
    """Per kind (and "all"), from the access log lines written after `offset`: requests, p50 and
    p99 of the server's own duration_ms, non-2xx answers, statements per request."""
    lines: dict[str, list[dict[str, Any]]] = {k.name: [] for k in MIX}
    with log.open("rb") as handle:
        handle.seek(offset)
        for raw in handle:
            if not raw.startswith(b"{"):
                continue
            line = json.loads(raw)
            tagged = re.match(r"mix\.([\w-]+)\.", line.get("request_id") or "")
            if line.get("logger") == "shop.access" and tagged and tagged[1] in lines:
                lines[tagged[1]].append(line)
    lines["all"] = [line for k in MIX for line in lines[k.name]]
    figures = {}
    for name, got in lines.items():
        durations = [line["duration_ms"] for line in got]
        figures[name] = {
            "requests": len(got),
            "p50_ms": percentile(durations, 50),
            "p99_ms": percentile(durations, 99),
            "non_2xx": sum(1 for line in got if not 200 <= line["status"] < 300),
            "statements_per_request": round(sum(line["statements"] for line in got) / len(got), 2)
            if got
            else float("nan"),
        }
    return figures


COUNTERS = ("xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned",
            "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted", "deadlocks")  # fmt: skip


def database_stats(url: str) -> dict[str, int]:
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(COUNTERS)} FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
            row = cursor.fetchone()
    finally:
        connection.close()
    return dict(zip(COUNTERS, row, strict=True))


def database_figures(
    before: dict[str, int], after: dict[str, int], requests: int
) -> dict[str, Any]:
    """Per request over the run: transactions (commits and rollbacks), rows read (returned by
    scans and fetched by index) and written; the buffer hit ratio; deadlocks."""
    delta = {name: after[name] - before[name] for name in COUNTERS}
    blocks = delta["blks_hit"] + delta["blks_read"]
    per = max(requests, 1)
    return {
        "transactions_per_request": round((delta["xact_commit"] + delta["xact_rollback"]) / per, 2),
        "rows_read_per_request": round((delta["tup_returned"] + delta["tup_fetched"]) / per, 1),
        "rows_written_per_request": round(
            (delta["tup_inserted"] + delta["tup_updated"] + delta["tup_deleted"]) / per, 2
        ),
        "buffer_hit_ratio": round(delta["blks_hit"] / blocks, 5) if blocks else float("nan"),
        "blocks_read": delta["blks_read"],
        "deadlocks": delta["deadlocks"],
        "deltas": delta,
    }
