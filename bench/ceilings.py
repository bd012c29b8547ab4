"""The ceilings shop is measured against, served by gunicorn with shop's own settings.

- `fixed_app`: bare Flask returning fixed bytes (the size of shop's product-list page).
- `sql_app`: bare Flask + psycopg2 running exactly the SQL shop runs for a scenario (captured
  by bench/run.py into BENCH_SQL_FILE) and json-encoding rows of the same shape; checkout runs
  its statements in one transaction.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Any

import psycopg2
from flask import Flask, Response

fixed_app = Flask("fixed")
sql_app = Flask("sql")
_captured: dict[str, list[tuple[str, Any]]] = {}
_connection: Any = None


@fixed_app.get("/<path:_anything>")
def fixed(_anything: str) -> Response:
    return Response(_fixed_body(), mimetype="application/json")


def _fixed_body() -> bytes:
    if "body" not in _captured:
        with open(os.environ["BENCH_FIXED_FILE"], "rb") as handle:
            _captured["body"] = handle.read()  # type: ignore[assignment]
    return _captured["body"]  # type: ignore[return-value]


def _statements(scenario: str) -> list[tuple[str, Any]]:
    if not _captured:
        with open(os.environ["BENCH_SQL_FILE"]) as handle:
            _captured.update(json.load(handle))
    return _captured[scenario]


def _db() -> Any:
    global _connection
    if _connection is None:
        _connection = psycopg2.connect(os.environ["DATABASE_URL"])
    return _connection


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@sql_app.get("/sql/<scenario>")
def run_reads(scenario: str) -> Response:
    connection = _db()
    results = []
    with connection.cursor() as cursor:
        for statement, params in _statements(scenario):
            cursor.execute(statement, params)
            if cursor.description:
                names = [c.name for c in cursor.description]
                results.append([{n: _plain(v) for n, v in zip(names, row, strict=True)}
                                for row in cursor.fetchall()])  # fmt: skip
    connection.rollback()
    return Response(json.dumps({"items": results}), mimetype="application/json")


@sql_app.post("/sql/<scenario>")
def run_writes(scenario: str) -> Response:
    connection = _db()
    with connection.cursor() as cursor:
        for statement, params in _statements(scenario):
            cursor.execute(statement, params)
            if cursor.description:
                cursor.fetchall()
    connection.commit()
    return Response(json.dumps({"ok": True}), status=201, mimetype="application/json")
