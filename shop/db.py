"""The database: the SQLAlchemy instance, declarative base and column types, lookups,
pagination, and the unit of work that owns each transaction."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    DateTime,
    Insert,
    MetaData,
    Numeric,
    Select,
    Table,
    bindparam,
    cast,
    column,
    event,
    func,
    insert,
    inspect,
    select,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    make_transient_to_detached,
    mapped_column,
    registry,
)
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.pool import ConnectionPoolEntry, Pool
from sqlalchemy.types import TypeDecorator

from shop.errors import NotFound, Unprocessable

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that always comes back in UTC, on PostgreSQL and SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)  # any offset a client sent, PostgreSQL's range or not
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )
    # Server-generated columns (ids, timestamps) come back with RETURNING, not a second query.
    __mapper_args__ = {"eager_defaults": True}


# Objects stay readable after commit: most responses are serialised after the unit of work.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})

# A pooled connection idle this long is pinged before it is used again (a restarted or failed
# over server, a firewall's idle cut); one in steady use is not: SQLAlchemy's pool_pre_ping
# would add a round trip to every request (a sixth of an uncached product read). One that
# dies while in steady use fails its request with a 503 (api._render_unavailable), and the
# pool replaces every connection older than the failure.
PING_AFTER_IDLE = 10.0  # seconds


@event.listens_for(Pool, "checkin")
def _checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["idle_since"] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
        return
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        dbapi_connection.rollback()
    except Exception as error:  # the pool drops it and checks out another (up to 3 times)
        raise DisconnectionError("a pooled connection idle for a while is gone") from error


# Prices, totals, costs: two decimal places, ten digits before them (schemas.MAX_MONEY).
MONEY = Numeric(12, 2)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def insert_ignoring_conflicts(model: type[Base]) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING (PostgreSQL and SQLite): a duplicate is skipped, and
    a concurrent duplicate waits for the first insert's transaction before being skipped."""
    insert = pg_insert if is_postgres() else sqlite_insert
    return insert(model).on_conflict_do_nothing()


M = TypeVar("M", bound=Base)


def table_of(model: type[Base]) -> Table:
    """A model's table, for Core statements where the ORM adds nothing."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def insert_loaded(objects: list[M]) -> None:
    """Write new objects of one model in one INSERT ... RETURNING and put them in the session
    as if loaded, with what the database generated (ids, defaults, timestamps): the columns
    the first object was not given come back by RETURNING (every object is given the same).

    For rows written once and not changed in the same unit of work (an order, its lines,
    ledger and outbox rows): the ORM's flush (planning, per-object bookkeeping) costs more
    than the statement. Relationships are not written: give them to the objects afterwards
    with `set_committed_value`, once their rows are inserted the same way.
    """
    model = type(objects[0])
    mapper = inspect(model)
    given = [a for a in mapper.column_attrs if a.key in objects[0].__dict__]
    generated = [a for a in mapper.column_attrs if a.key not in objects[0].__dict__]
    rows = [{a.columns[0].key: o.__dict__[a.key] for a in given} for o in objects]
    statement = insert(table_of(model)).returning(
        *(a.columns[0] for a in generated), sort_by_parameter_order=True
    )
    session = db.session
    for obj, row in zip(objects, session.execute(statement, rows), strict=True):
        for attribute, value in zip(generated, row, strict=True):
            set_committed_value(obj, attribute.key, value)
        make_transient_to_detached(obj)
        session.add(obj)


def update_many(table: Table, rows: list[dict[str, Any]]) -> None:
    """UPDATE rows of `table` by id, each to its own values (every row names the same
    columns): one UPDATE ... FROM (VALUES ...) on PostgreSQL, an executemany elsewhere."""
    if not rows:
        return
    names = [name for name in rows[0] if name != "id"]
    if db.session.get_bind().dialect.name == "postgresql":
        given = values(
            *(column(name, table.c[name].type) for name in ("id", *names)), name="given"
        ).data([tuple(row[name] for name in ("id", *names)) for row in rows])
        # Cast: a column of NULLs in VALUES would be text to PostgreSQL.
        db.session.execute(
            update(table)
            .where(table.c.id == given.c.id)
            .values({name: cast(given.c[name], table.c[name].type) for name in names})
        )
        return
    db.session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values({name: bindparam(f"b_{name}") for name in names}),
        [{f"b_{name}": value for name, value in row.items()} for row in rows],
    )


def _label(model: type[Base]) -> str:
    """How a 404 names the model: its `label`, else `PurchaseOrder` -> "Purchase order"."""
    named: str | None = getattr(model, "label", None)
    return named or re.sub(r"(?<!^)(?=[A-Z])", " ", model.__name__).capitalize()


def get_or_404(
    model: type[M],
    ident: int,
    *,
    visible: Callable[[M], bool] | None = None,
    for_update: bool = False,
    **options: Any,
) -> M:
    """The row `ident` of `model`, or NotFound when it is missing or not `visible` (another
    customer's row is a 404, not a 403). `for_update` locks it and reloads what is cached."""
    row = db.session.get(
        model,
        ident,
        with_for_update=for_update or None,
        populate_existing=for_update,
        **options,
    )
    if row is None or (visible is not None and not visible(row)):
        raise NotFound(f"{_label(model)} {ident} does not exist.")
    return row


def rows_named(model: type[M], ids: list[int], field: str) -> list[M]:
    """The rows of `model` with these ids (a body's `field` names them), ordered by id; a 422
    naming `field` and the ids that are missing."""
    wanted = set(ids)
    key = inspect(model).primary_key[0]
    rows = list(db.session.scalars(select(model).where(key.in_(wanted)).order_by(key)))
    missing = sorted(wanted - {getattr(row, key.name) for row in rows})
    if missing:
        message = f"No {_label(model).lower()} with the ids {missing}."
        raise Unprocessable(message, errors={field: [message]})
    return rows


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction: commit on success, roll back on error, then run the after-commit (or
    after-rollback) hooks.

    Nested use joins the outer unit, so a service may call another service.
    """
    session = db.session()
    if session.info.get("replica"):
        raise RuntimeError("a unit of work on the read replica: writes go to the primary")
    depth = session.info.get("uow_depth", 0)
    session.info["uow_depth"] = depth + 1
    committed = False
    try:
        yield session
        if depth == 0:
            session.commit()
            committed = True
    except BaseException:
        if depth == 0:
            session.rollback()
            for hook in uow_state().get("after_rollback", []):
                hook()
        raise
    finally:
        session.info["uow_depth"] = depth
        state = session.info.pop("uow", {}) if depth == 0 else {}
    if committed:
        for hook in state.get("after_commit", []):
            hook()


def in_unit_of_work() -> bool:
    return bool(db.session.info.get("uow_depth", 0))


def uow_state() -> dict[str, Any]:
    """Scratch space of the current unit of work, dropped when it ends."""
    state: dict[str, Any] = db.session.info.setdefault("uow", {})
    return state


def after_commit(hook: Callable[[], None]) -> None:
    """Run `hook` once the current unit of work has committed (never if it rolls back)."""
    uow_state().setdefault("after_commit", []).append(hook)


def after_rollback(hook: Callable[[], None]) -> None:
    """Run `hook` if the current unit of work rolls back (undo what is not in the database)."""
    uow_state().setdefault("after_rollback", []).append(hook)


@dataclass
class Page:
    items: list[Any]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.page_size) if self.total else 0

    @classmethod
    def of(cls, items: list[Any], page: int, page_size: int) -> Page:
        """A page of a list already in memory (a product's variants)."""
        start = (page - 1) * page_size
        return cls(items[start : start + page_size], page, page_size, total=len(items))


def count_rows(stmt: Select[Any]) -> int:
    """How many rows `stmt` returns."""
    return db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def paginate(
    stmt: Select[Any],
    page: int,
    page_size: int,
    *,
    scalars: bool = True,
    total: Callable[[], int] | None = None,
) -> Page:
    """Run `stmt` for one page plus one COUNT (or `total()`), whatever the page size."""
    count = total() if total is not None else count_rows(stmt)
    paged = stmt.limit(page_size).offset((page - 1) * page_size)
    result = db.session.execute(paged)
    items = list(result.scalars().unique() if scalars else result.all())
    return Page(items=items, page=page, page_size=page_size, total=count)
