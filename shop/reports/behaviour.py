"""Customers' behaviour: the `interactions` job that writes the facts shop.tracking buffered
(interactions, searches, sessions given to the account that logged in with them) in bulk; a
product's views and cart adds per day; the search report."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shop import tracking
from shop.auth.models import User
from shop.caching import invalidate
from shop.db import db, is_postgres, unit_of_work, utcnow
from shop.products.models import Product
from shop.reports.aggregates import (
    as_date,
    bounds,
    clean_days,
    each_day,
    in_days,
    interaction_counts,
    mark_dirty,
    on_days,
    utc_day,
)
from shop.reports.cache import REPORTS
from shop.reports.models import (
    DailyProductInteractions,
    Interaction,
    InteractionBatch,
    InteractionKind,
    SearchQuery,
    SearchSource,
    SessionLogin,
)

log = logging.getLogger(__name__)

BATCH = 5000  # facts written per transaction
MAX_BATCHES = 200  # per run: a backlog is written over the next runs, a minute apart
FLUSH_LOCK = 7_200_000_000  # one run writes at a time (two at once write each batch once)
MERGE, SEARCH = tracking.Fact.LOGIN.value, tracking.Fact.SEARCH.value
KINDS = {kind.value for kind in InteractionKind}
MAX_QUERY = 200


def normalise_query(q: str) -> str:
    """A search as counted: lowercase, runs of spaces as one, trimmed, at most 200 characters."""
    return re.sub(r"\s+", " ", q).strip().lower()[:MAX_QUERY]


def flush_interactions() -> dict[str, Any]:
    """The `interactions` job: the buffered facts, oldest first, written a batch per
    transaction; safe to run twice, or twice at once."""
    written = {"interactions": 0, "searches": 0, "sessions_merged": 0, "skipped": 0}
    batches = 0
    db.session.rollback()
    while batches < MAX_BATCHES:
        batch = tracking.take(BATCH)
        if not batch.facts:
            tracking.done(batch)
            break
        with unit_of_work() as session:
            if is_postgres():
                session.execute(select(func.pg_advisory_xact_lock(FLUSH_LOCK)))
            if batch.token is None or session.get(InteractionBatch, batch.token) is None:
                for name, count in _write(batch.facts).items():
                    written[name] += count
                invalidate(REPORTS)  # the figures of today (and of a late fact's day) moved
                if batch.token is not None:
                    session.add(InteractionBatch(token=batch.token))
        tracking.done(batch)
        batches += 1
        if len(batch.facts) < BATCH:
            break
    with unit_of_work() as session:
        day_ago = utcnow() - timedelta(days=1)
        session.execute(delete(InteractionBatch).where(InteractionBatch.applied_at < day_ago))
        session.execute(delete(SessionLogin).where(SessionLogin.logged_in_at < day_ago))
    return {**written, "batches": batches, "dropped": tracking.take_dropped(),
            "pending": tracking.pending()}  # fmt: skip


def _at(fact: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(float(fact["at"]), UTC)


def _write(facts: list[dict[str, Any]]) -> dict[str, int]:
    """One batch's rows in one INSERT per table (an anonymous row of a session logged in
    already is its user's), then the batch's logins: each session's rows become its user's,
    and the login is kept a day for rows that arrive later. A fact that does not parse, or
    names a product or user deleted since, is skipped."""
    interactions, searches, merges, skipped = [], [], [], 0
    for fact in facts:
        try:
            kind = fact["kind"]
            if kind in KINDS:
                value = fact.get("value")
                interactions.append(
                    {
                        "user_id": int(fact["user_id"]) if fact.get("user_id") else None,
                        "session_id": fact.get("session_id") or None,
                        "product_id": int(fact["product_id"]),
                        "kind": kind,
                        "value": None if value is None else int(value),
                        "created_at": _at(fact),
                    }
                )
                if not interactions[-1]["user_id"] and not interactions[-1]["session_id"]:
                    interactions.pop()
                    skipped += 1
            elif kind == SEARCH:
                query = normalise_query(str(fact["query"]))
                row = {
                    "query": query,
                    "results": int(fact["results"]),
                    "source": SearchSource(fact["source"]).value,
                    "created_at": _at(fact),
                }
                if query:
                    searches.append(row)
            elif kind == MERGE:
                merges.append((int(fact["user_id"]), str(fact["session_id"])))
            else:
                skipped += 1
        except (KeyError, TypeError, ValueError):
            log.warning("interactions: a fact that does not parse skipped: %r", fact)
            skipped += 1
    kept = _existing(interactions)
    skipped += len(interactions) - len(kept)
    merged = _logged_in(kept)
    if kept:
        db.session.execute(insert(Interaction), kept)
        _mark_days(row["created_at"] for row in kept)
    if searches:
        db.session.execute(insert(SearchQuery), searches)
    for user_id, session_id in merges:
        upsert = (pg_insert if is_postgres() else sqlite_insert)(SessionLogin)
        db.session.execute(
            upsert.values(session_id=session_id, user_id=user_id).on_conflict_do_update(
                index_elements=[SessionLogin.session_id],
                set_={"user_id": user_id, "logged_in_at": func.now()},
            )
        )
        result = db.session.execute(
            update(Interaction)
            .where(Interaction.session_id == session_id, Interaction.user_id.is_(None))
            .values(user_id=user_id)
            .execution_options(synchronize_session=False)
        )
        merged += cast(CursorResult[Any], result).rowcount
    return {"interactions": len(kept), "searches": len(searches),
            "sessions_merged": merged, "skipped": skipped}  # fmt: skip


def _logged_in(rows: list[dict[str, Any]]) -> int:
    """Give anonymous rows of a session that has logged in to its user (a view another process
    sent after the login's fact was written); how many."""
    sessions = {row["session_id"] for row in rows if row["user_id"] is None}
    if not sessions:
        return 0
    found = db.session.execute(
        select(SessionLogin.session_id, SessionLogin.user_id).where(
            SessionLogin.session_id.in_(sessions)
        )
    )
    users = {session_id: user_id for session_id, user_id in found}
    given = 0
    for row in rows:
        if row["user_id"] is None and row["session_id"] in users:
            row["user_id"] = users[row["session_id"]]
            given += 1
    return given


def _existing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows whose product and user (if any) still exist."""
    products = {row["product_id"] for row in rows}
    users = {row["user_id"] for row in rows if row["user_id"]}
    if products:
        products = set(db.session.scalars(select(Product.id).where(Product.id.in_(products))))
    if users:
        users = set(db.session.scalars(select(User.id).where(User.id.in_(users))))
    return [
        row
        for row in rows
        if row["product_id"] in products and (row["user_id"] is None or row["user_id"] in users)
    ]


def _mark_days(times: Iterable[datetime]) -> None:
    """A late fact of a closed day (a backlog written after midnight) makes the day's
    aggregates stale, as a late order change does."""
    seen: set[date] = set()
    for at in times:
        if at.date() not in seen:
            seen.add(at.date())
            mark_dirty(at)


def product_interactions_by_day(
    product_id: int, first: date, last: date
) -> dict[date, dict[str, int]]:
    """{day: {views, cart_adds}} of one product, for days with any."""
    clean = clean_days(first, last)
    result: dict[date, dict[str, int]] = {}
    if clean:
        for row in db.session.scalars(
            select(DailyProductInteractions).where(
                DailyProductInteractions.product_id == product_id,
                on_days(DailyProductInteractions.day, clean),
            )
        ):
            result[as_date(row.day)] = {"views": row.views, "cart_adds": row.cart_adds}
    live = [d for d in each_day(first, last) if d not in clean]
    if live:
        day_of = utc_day(Interaction.created_at).label("day")
        stmt = (
            select(day_of, *interaction_counts())
            .where(Interaction.product_id == product_id, in_days(Interaction.created_at, live))
            .group_by(day_of)
        )
        for row_day, views, cart_adds in db.session.execute(stmt):
            if views or cart_adds:
                result[as_date(row_day)] = {"views": int(views), "cart_adds": int(cart_adds)}
    return result


# --- the search report ----------------------------------------------------------------------


def search_report(first: date, last: date, limit: int) -> dict[str, Any]:
    """The range's most made searches (with their results on average) and the most made that
    found nothing."""
    start, end = bounds(first, last)
    in_range = (SearchQuery.created_at >= start, SearchQuery.created_at < end)
    searches = func.count().label("searches")
    top = db.session.execute(
        select(SearchQuery.query, searches, func.avg(SearchQuery.results).label("avg_results"))
        .where(*in_range)
        .group_by(SearchQuery.query)
        .order_by(searches.desc(), SearchQuery.query)
        .limit(limit)
    )
    zero = db.session.execute(
        select(SearchQuery.query, searches)
        .where(*in_range, SearchQuery.results == 0)
        .group_by(SearchQuery.query)
        .order_by(searches.desc(), SearchQuery.query)
        .limit(limit)
    )
    return {
        "start": first,
        "end": last,
        "top_queries": [
            {"query": q, "searches": n, "avg_results": round(float(avg), 2)} for q, n, avg in top
        ],
        "zero_result_queries": [{"query": q, "searches": n} for q, n in zero],
    }
