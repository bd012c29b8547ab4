"""Writing events (inside the change's unit of work) and reading them in feed order.

The trap of an event log: ids from a sequence are taken before commit, so a transaction with
a smaller id can commit after one with a larger id, and a reader that has passed the larger one
("after X") would never see the smaller. Here an event's position is (txid, id): the writing
transaction's id first (PostgreSQL's 64-bit xid8), then its sequence number. A reader at
"after X" sees only events of transactions below the oldest one still in flight (the `xmin`
of its own snapshot): each of those has ended, so no event can ever appear at a position the
reader has passed. The price is that a long write transaction holds the feed back (never
loses anything) until it ends. On SQLite writers commit one at a time: txid is 0 and the id
alone is commit order.

The public id is the position as 32 digits (EventRecord.position).
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CursorResult,
    Select,
    Text,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    true,
)
from sqlalchemy import tuple_ as row

from shop.auth.models import User
from shop.db import (
    Page,
    after_commit,
    db,
    is_postgres,
    paginate,
    table_of,
    unit_of_work,
    uow_state,
    utcnow,
)
from shop.events.models import EventRecord
from shop.queues import publish
from shop.security import Role

# The types of API.md (and shipment.created); returns are written once they exist.
TYPES = (
    "order.created",
    "order.status_changed",
    "order.cancelled",
    "payment.succeeded",
    "payment.failed",
    "refund.created",
    "shipment.created",
    "shipment.updated",
    "return.updated",
    "inventory.low_stock",
    "product.back_in_stock",
    "product.on_sale",
)
PRUNE_BATCH = 10_000
WAKE_CHANNEL = "shop:events"  # Redis pub/sub: "new events committed, read on"


def _xid(value: Any) -> ColumnElement[int]:
    return cast(cast(value, Text), BigInteger)


def record(type_: str, data: dict[str, Any], *, user_id: int | None) -> None:
    """Write an event into the current unit of work (it commits, or vanishes, with it).
    `user_id`: the customer it belongs to (None: staff only). After the commit the realtime
    processes are told to read on (WAKE_CHANNEL)."""
    txid = _xid(func.pg_current_xact_id()) if is_postgres() else 0
    db.session.execute(
        insert(table_of(EventRecord)).values(txid=txid, type=type_, user_id=user_id, data=data)
    )
    state = uow_state()
    if "events" not in state:
        state["events"] = True
        after_commit(lambda: publish(WAKE_CHANNEL))


def _ended() -> ColumnElement[bool]:
    """Events of transactions that have all ended (see the module's docstring)."""
    if not is_postgres():
        return true()
    return EventRecord.txid < _xid(func.pg_snapshot_xmin(func.pg_current_snapshot()))


def _seen_by(user: User) -> ColumnElement[bool]:
    """Staff and admins see every event; a customer those of their own orders."""
    return true() if user.has_role(Role.STAFF) else EventRecord.user_id == user.id


def _read_on(stmt: Select[tuple[EventRecord]], txid: int, id_: int) -> Select[tuple[EventRecord]]:
    """`stmt` narrowed to the events after (txid, id_) that can no longer be overtaken,
    oldest first."""
    return (
        stmt.where(row(EventRecord.txid, EventRecord.id) > row(literal(txid), literal(id_)))
        .where(_ended())
        .order_by(EventRecord.txid, EventRecord.id)
    )


def feed(
    user: User, *, page: int, page_size: int, after: str | None = None, type: str | None = None
) -> Page:
    """The events `user` may see: newest first, or with `after` those after it, oldest first."""
    stmt = select(EventRecord).where(_seen_by(user))
    if type is not None:
        stmt = stmt.where(EventRecord.type == type)
    if after is None:
        stmt = stmt.order_by(EventRecord.txid.desc(), EventRecord.id.desc())
    else:
        stmt = _read_on(stmt, *EventRecord.parse_position(after))
    return paginate(stmt, page, page_size)


def since(
    txid: int,
    id_: int,
    limit: int,
    *,
    user: User | None = None,
    upto: tuple[int, int] | None = None,
) -> Sequence[EventRecord]:
    """The events after (txid, id_) that can no longer be overtaken, oldest first: all of
    them (the fan-outs), or those `user` may see, at most up to the position `upto`."""
    stmt = select(EventRecord) if user is None else select(EventRecord).where(_seen_by(user))
    if upto is not None:
        stmt = stmt.where(row(EventRecord.txid, EventRecord.id) <= row(*map(literal, upto)))
    return db.session.scalars(_read_on(stmt, txid, id_).limit(limit)).all()


def newest() -> tuple[int, int]:
    """The position of the newest event that can no longer be overtaken ((0, 0): none)."""
    found = db.session.execute(
        select(EventRecord.txid, EventRecord.id)
        .where(_ended())
        .order_by(EventRecord.txid.desc(), EventRecord.id.desc())
        .limit(1)
    ).first()
    return (found[0], found[1]) if found else (0, 0)


def prune_events() -> dict[str, int]:
    """The periodic job: delete events older than EVENT_RETENTION_HOURS, a batch at a time."""
    cutoff = utcnow() - timedelta(hours=current_app.config["EVENT_RETENTION_HOURS"])
    deleted = 0
    while True:
        with unit_of_work() as session:
            batch = (
                select(EventRecord.id)
                .where(EventRecord.created_at < cutoff)
                .order_by(EventRecord.created_at)
                .limit(PRUNE_BATCH)
            )
            result = session.execute(
                delete(EventRecord).where(EventRecord.id.in_(batch.scalar_subquery()))
            )
        count = typing.cast(CursorResult[Any], result).rowcount
        deleted += count
        if count < PRUNE_BATCH:
            return {"deleted": deleted}
