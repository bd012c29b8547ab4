"""The one stock path: every change of a product's or a variant's stock in the whole system
goes through `change_stock` (or, for many rows at once, `change_stocks`), which writes the
ledger row in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import Boolean, Integer, column, exists, insert, or_, select, update, values
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from shop import bus
from shop.auth.models import User
from shop.caching import invalidate
from shop.db import db, get_or_404, insert_loaded, is_postgres, table_of
from shop.errors import Conflict, NotFound, Unprocessable
from shop.products.cache import CATALOG, CATALOG_MATCHES
from shop.products.events import StockChanged
from shop.products.models import MovementType, Product, ProductVariant, StockMovement


def change_stock(
    *,
    product_id: int,
    variant_id: int | None = None,
    delta: int,
    type: MovementType,
    actor: User | None,
    reference: str | None = None,
    note: str | None = None,
) -> StockMovement:
    """Move stock by `delta` and write the ledger row, inside the caller's unit of work.

    Conditional UPDATEs (never below zero, backed by CHECK constraints) lock the product row
    first and then the variant's, so callers that sort their lines by (product, variant)
    cannot deadlock one another. Raises Conflict when stock would go below zero. Publishes
    StockChanged.
    """
    session = db.session
    # Core statements on the tables: the ORM's synchronisation of the session (it cannot
    # evaluate `variants.any()`, so it would fetch) costs more than the UPDATE; the one row
    # a session may hold is given its new stock below.
    products, variants = table_of(Product), table_of(ProductVariant)
    product_rule = products.c.stock + delta >= 0
    if variant_id is None:
        # A product with variants sells, and counts its stock, by variant.
        product_rule &= ~exists().where(variants.c.product_id == products.c.id)
    updated = session.execute(
        update(products)
        .where(products.c.id == product_id, product_rule)
        .values(stock=products.c.stock + delta)
        .returning(products.c.stock, products.c.updated_at, products.c.low_stock_threshold)
    ).first()
    if updated is None:
        _explain_refusal(product_id, variant_id, delta)
    stock_after, updated_at, threshold = updated
    _held(Product, product_id, stock=stock_after, updated_at=updated_at)
    in_stock_changed = (stock_after > 0) != (stock_after - delta > 0)
    if variant_id is not None:
        changed = session.execute(
            update(variants)
            .where(
                variants.c.id == variant_id,
                variants.c.product_id == product_id,
                variants.c.stock + delta >= 0,
            )
            .values(stock=variants.c.stock + delta)
            .returning(variants.c.stock, variants.c.updated_at)
        ).first()
        if changed is None:
            _explain_refusal(product_id, variant_id, delta)
        stock_after, updated_at = changed
        _held(ProductVariant, variant_id, stock=stock_after, updated_at=updated_at)
    entry = StockMovement(
        product_id=product_id,
        variant_id=variant_id,
        type=type,
        quantity=delta,
        stock_after=stock_after,
        reference=reference,
        note=note,
        created_by=actor.id if actor else None,
    )
    insert_loaded([entry])
    event = StockChanged(
        product_id=product_id,
        variant_id=variant_id,
        movement=type.value,
        delta=delta,
        stock_after=stock_after,
        low_stock_threshold=threshold,
    )
    # Matches change when a product enters or leaves `in_stock` lists, or a row its low-stock
    # count (a sale that leaves both alone changes only what the answers show).
    invalidate(CATALOG)
    if in_stock_changed or event.crossed_threshold:
        invalidate(CATALOG_MATCHES)
    bus.publish(event)
    return entry


@dataclass(frozen=True)
class Move:
    """One row's change in `change_stocks`: a product's own stock, or one variant's."""

    product_id: int
    variant_id: int | None
    delta: int


def change_stocks(
    moves: list[Move], *, type: MovementType, actor: User | None, note: str | None = None
) -> None:
    """`change_stock` for many rows in a few statements (the catalog import's batches): the
    same conditional UPDATEs (every product row, then every variant row), ledger rows and
    events. The caller holds the rows' locks (product rows first, in id order), so the
    statements' own order cannot deadlock. Raises as change_stock does for the first row
    refused (the unit of work then rolls back). On SQLite, move by move through change_stock.
    """
    moves = sorted(moves, key=lambda m: (m.product_id, m.variant_id or 0))
    if not moves:
        return
    if not is_postgres():
        for m in moves:
            change_stock(
                product_id=m.product_id,
                variant_id=m.variant_id,
                delta=m.delta,
                type=type,
                actor=actor,
                note=note,
            )
        return
    session = db.session
    products, variants = table_of(Product), table_of(ProductVariant)
    per_product: dict[int, list[Move]] = {}
    for m in moves:
        per_product.setdefault(m.product_id, []).append(m)
    by_product = values(
        column("id", Integer), column("delta", Integer), column("own", Boolean), name="moves"
    ).data(
        [(id, sum(m.delta for m in ms), ms[0].variant_id is None) for id, ms in per_product.items()]
    )
    # As in change_stock: a product with variants moves only by variant.
    own_rule = ~exists().where(variants.c.product_id == products.c.id)
    after = {
        row.id: row
        for row in session.execute(
            update(products)
            .where(
                products.c.id == by_product.c.id,
                products.c.stock + by_product.c.delta >= 0,
                or_(~by_product.c.own, own_rule),
            )
            .values(stock=products.c.stock + by_product.c.delta)
            .returning(
                products.c.id,
                products.c.stock,
                products.c.updated_at,
                products.c.low_stock_threshold,
            )
        )
    }
    _refuse_missing([m for m in moves if m.product_id not in after])
    variant_moves = [m for m in moves if m.variant_id is not None]
    variant_after: dict[int, int] = {}
    if variant_moves:
        by_variant = values(
            column("id", Integer),
            column("product_id", Integer),
            column("delta", Integer),
            name="variant_moves",
        ).data([(m.variant_id, m.product_id, m.delta) for m in variant_moves])
        for row in session.execute(
            update(variants)
            .where(
                variants.c.id == by_variant.c.id,
                variants.c.product_id == by_variant.c.product_id,
                variants.c.stock + by_variant.c.delta >= 0,
            )
            .values(stock=variants.c.stock + by_variant.c.delta)
            .returning(variants.c.id, variants.c.stock, variants.c.updated_at)
        ):
            variant_after[row.id] = row.stock
            _held(ProductVariant, row.id, stock=row.stock, updated_at=row.updated_at)
        _refuse_missing([m for m in variant_moves if m.variant_id not in variant_after])
    matches_changed = False
    for id, row in after.items():
        _held(Product, id, stock=row.stock, updated_at=row.updated_at)
        delta = sum(m.delta for m in per_product[id])
        matches_changed |= (row.stock > 0) != (row.stock - delta > 0)
    events = [
        StockChanged(
            product_id=m.product_id,
            variant_id=m.variant_id,
            movement=type.value,
            delta=m.delta,
            stock_after=after[m.product_id].stock
            if m.variant_id is None
            else variant_after[m.variant_id],
            low_stock_threshold=after[m.product_id].low_stock_threshold,
        )
        for m in moves
    ]
    _record(events, actor=actor, note=note, matches_changed=matches_changed)


def record_initial_stock(
    items: list[tuple[int, int, int]], *, actor: User | None, note: str | None = None
) -> None:
    """The INITIAL ledger rows and events of products (product id, stock, low-stock
    threshold) inserted in this unit of work already holding their first stock (the catalog
    import's bulk INSERT): what change_stock writes when a new product is stocked, without
    the UPDATE of rows nobody else can see yet."""
    events = [
        StockChanged(
            product_id=id,
            variant_id=None,
            movement=MovementType.INITIAL.value,
            delta=stock,
            stock_after=stock,
            low_stock_threshold=threshold,
        )
        for id, stock, threshold in items
        if stock
    ]
    _record(events, actor=actor, note=note, matches_changed=True)


def _record(
    events: list[StockChanged], *, actor: User | None, note: str | None, matches_changed: bool
) -> None:
    """The ledger rows of many changes in one INSERT, their events, the caches."""
    if not events:
        return
    db.session.execute(
        insert(table_of(StockMovement)),
        [
            {
                "product_id": e.product_id,
                "variant_id": e.variant_id,
                "type": e.movement,
                "quantity": e.delta,
                "stock_after": e.stock_after,
                "reference": None,
                "note": note,
                "created_by": actor.id if actor else None,
            }
            for e in events
        ],
    )
    invalidate(CATALOG)
    if matches_changed or any(e.crossed_threshold for e in events):
        invalidate(CATALOG_MATCHES)
    for event in events:
        bus.publish(event)


def _refuse_missing(refused: list[Move]) -> None:
    if refused:
        _explain_refusal(refused[0].product_id, refused[0].variant_id, refused[0].delta)


def _held(model: type[Product | ProductVariant], id: int, **values: Any) -> None:
    """Give the updated row's values to the object the session holds for it, if any."""
    held = db.session.identity_map.get(identity_key(model, id))
    if held is not None:
        for name, value in values.items():
            set_committed_value(held, name, value)


def _explain_refusal(product_id: int, variant_id: int | None, delta: int) -> NoReturn:
    product = get_or_404(Product, product_id)
    if variant_id is None:
        if product.variants:
            raise Unprocessable(
                "This product has variants: move the stock of a variant.",
                errors={"variant_id": ["Required for a product with variants."]},
            )
        available = product.stock
    else:
        variant = db.session.scalar(
            select(ProductVariant).where(
                ProductVariant.id == variant_id, ProductVariant.product_id == product_id
            )
        )
        if variant is None:
            raise NotFound(f"Product {product_id} has no variant {variant_id}.")
        available = variant.stock
    raise Conflict(
        f"Not enough stock: {available} available, {-delta} requested.",
        errors={"stock": [f"{available} available"]},
    )
