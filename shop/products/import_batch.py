"""One batch of a catalog import, applied in the caller's unit of work: the batch's products
and variants read (and locked) in one query each, new rows inserted and changed rows updated
in one statement each, stock moved through the ledger (`stock.change_stocks`), the catalog's
events, one audit entry for the batch, the caches invalidated once.

Upserts by SKU, whatever its case (the stored SKU keeps its spelling). A product that has
variants, or gets some in the file, counts its stock by them: its own row's `stock` is not
read. A new product's missing categories are created (path "Garden > Tools", matched by name
whatever the case, as the category tree is). A variant's product must exist, or come in the
file before it (the export's order). `updated` counts the rows that changed something.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import exists, func, insert, select, text

from shop import bus
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import User
from shop.caching import invalidate
from shop.db import db, is_postgres, table_of, update_many
from shop.products.cache import CATALOG, CATALOG_MATCHES
from shop.products.categories import create_category
from shop.products.events import ItemCreated
from shop.products.import_rows import Row
from shop.products.models import Category, MovementType, Product, ProductVariant
from shop.products.slugs import unique_slugs
from shop.products.stock import Move, change_stocks, record_initial_stock

_products, _variants = table_of(Product), table_of(ProductVariant)
PRODUCT_FIELDS = ("name", "price", "compare_at_price", "low_stock_threshold", "category_id",
                  "is_active", "is_featured")  # fmt: skip
VARIANT_FIELDS = ("name", "price", "compare_at_price", "is_active")
REQUIRED_TO_CREATE = ("name", "price")


@dataclass(frozen=True)
class Plan:
    """What a batch needs to know of the whole file (read through once before the batches)."""

    total: int
    first_rows: dict[str, int]  # each SKU (lowercase) -> the row it is first on
    parents: set[str]  # the SKUs (lowercase) that variant rows name as their product


@dataclass
class Outcome:
    created: list[str] = field(default_factory=list)  # SKUs
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, row: Row) -> None:
        self.failed += 1
        self.errors.extend(row.errors)

    def refuse(self, row: Row, name: str, message: str) -> None:
        row.fail(name, message)
        self.reject(row)

    def changed(self, sku: str, changed: bool) -> None:
        if changed:
            self.updated.append(sku)
        else:
            self.unchanged += 1


@dataclass
class _Batch:
    plan: Plan
    actor: User | None
    note: str
    outcome: Outcome
    products: dict[str, dict[str, Any]]  # SKU (lowercase) -> the product's columns
    variants: dict[str, dict[str, Any]]
    adjustments: list[Move] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # the new products' keys


def apply_batch(rows: list[Row], plan: Plan, *, actor: User | None, job_id: int) -> Outcome:
    outcome = Outcome()
    good = []
    for row in rows:
        first = plan.first_rows.get(row.key)
        if not row.errors and first != row.number:
            row.fail("sku", f"{row.sku} is on row {first} already: each SKU once per file.")
        if row.errors:
            outcome.reject(row)
        else:
            good.append(row)
    keys = {row.key for row in good} | {row.product_key for row in good if row.product_key}
    _claim(keys)
    batch = _Batch(
        plan,
        actor,
        f"catalog import {job_id}",
        outcome,
        products=_locked_products(keys),
        variants=_locked_variants({row.key for row in good}),
    )
    _upsert_products(batch, [row for row in good if row.product_sku is None])
    _upsert_variants(batch, [row for row in good if row.product_sku is not None])
    change_stocks(batch.adjustments, type=MovementType.ADJUSTMENT, actor=actor, note=batch.note)
    # Announced as products.catalog announces a new product, with its stock once its new
    # variants (in its batch) have theirs.
    for key in batch.created:
        new = batch.products[key]
        bus.publish(ItemCreated(new["id"], None, new["stock"], new["low_stock_threshold"]))
    if outcome.created or outcome.updated:
        invalidate(CATALOG, CATALOG_MATCHES)
        record(
            Action.CATALOG_IMPORTED,
            actor=actor,
            target_type=Target.JOB,
            target_id=job_id,
            changes={
                "rows": [rows[0].number, rows[-1].number],
                "created": outcome.created,
                "updated": outcome.updated,
            },
        )
    return outcome


def _claim(keys: set[str]) -> None:
    """Take the SKUs' claims, as products.catalog does for one (in a fixed order): a product
    created meanwhile with one of them waits for this batch, or this batch for it."""
    if keys and is_postgres():
        db.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(c)) FROM unnest(CAST(:c AS text[])) c"),
            {"c": sorted(f"sku:{key}" for key in keys)},
        )


def _locked_products(keys: set[str]) -> dict[str, dict[str, Any]]:
    has_variants = exists().where(_variants.c.product_id == _products.c.id)
    rows = db.session.execute(
        select(
            _products.c.id,
            _products.c.sku,
            _products.c.stock,
            *(_products.c[name] for name in PRODUCT_FIELDS),
            has_variants.label("has_variants"),
        )
        .where(func.lower(_products.c.sku).in_(keys))
        .order_by(_products.c.id)
        .with_for_update(of=_products)
    )
    return {row.sku.lower(): dict(row._mapping) for row in rows}


def _locked_variants(keys: set[str]) -> dict[str, dict[str, Any]]:
    rows = db.session.execute(
        select(
            _variants.c.id,
            _variants.c.sku,
            _variants.c.product_id,
            _variants.c.stock,
            *(_variants.c[name] for name in VARIANT_FIELDS),
        )
        .where(func.lower(_variants.c.sku).in_(keys))
        .order_by(_variants.c.product_id, _variants.c.id)
        .with_for_update()
    )
    return {row.sku.lower(): dict(row._mapping) for row in rows}


class _Categories:
    """The category tree by (parent id, name in lowercase), read when a row first needs it;
    a path's missing categories are created (audited as any category is)."""

    def __init__(self, actor: User | None) -> None:
        self.actor = actor
        self.ids: dict[tuple[int | None, str], int] | None = None

    def id_of(self, path: tuple[str, ...] | None) -> int | None:
        if path is None:
            return None
        if self.ids is None:
            self.ids = {
                (parent_id, name.lower()): id
                for id, name, parent_id in db.session.execute(
                    select(Category.id, Category.name, Category.parent_id)
                )
            }
        parent: int | None = None
        for name in path:
            key = (parent, name.lower())
            if key not in self.ids:
                self.ids[key] = create_category(self.actor, {"name": name, "parent_id": parent}).id
            parent = self.ids[key]
        return parent


def _missing(row: Row, values: dict[str, Any]) -> bool:
    for name in REQUIRED_TO_CREATE:
        if name not in values:
            row.fail(name, f"Required to create a {'variant' if row.product_sku else 'product'}.")
    return bool(row.errors)


def _upsert_products(batch: _Batch, rows: list[Row]) -> None:
    categories = _Categories(batch.actor)
    changed, new = [], []
    for row in rows:
        if row.key in batch.variants:
            batch.outcome.refuse(
                row, "sku", f"{row.sku} is a variant's SKU: name its product in product_sku."
            )
            continue
        values = dict(row.values)
        if "category" in values:
            values["category_id"] = categories.id_of(values.pop("category"))
        stock = values.pop("stock", None)
        held = batch.products.get(row.key)
        by_variants = row.key in batch.plan.parents or bool(held and held["has_variants"])
        if held is None:
            if _missing(row, values):
                batch.outcome.reject(row)
            else:
                new.append((row, values, 0 if by_variants else stock or 0))
            continue
        changes = {name: value for name, value in values.items() if held[name] != value}
        held.update(changes)
        if changes:
            changed.append({"id": held["id"], **{name: held[name] for name in PRODUCT_FIELDS}})
        moved = stock is not None and not by_variants and stock != held["stock"]
        if moved:
            batch.adjustments.append(Move(held["id"], None, stock - held["stock"]))
        batch.outcome.changed(held["sku"], bool(changes) or moved)
    update_many(_products, changed)
    if new:
        _create_products(batch, new)


def _create_products(batch: _Batch, new: list[tuple[Row, dict[str, Any], int]]) -> None:
    threshold = current_app.config["LOW_STOCK_THRESHOLD"]
    slugs = unique_slugs(Product, [values["name"] for _, values, _ in new])
    inserted = [
        {
            "sku": row.sku,
            "slug": slug,
            "stock": stock,
            "name": values["name"],
            "price": values["price"],
            "compare_at_price": values.get("compare_at_price"),
            "low_stock_threshold": values.get("low_stock_threshold", threshold),
            "category_id": values.get("category_id"),
            "is_active": values.get("is_active", True),
            "is_featured": values.get("is_featured", False),
        }
        for (row, values, stock), slug in zip(new, slugs, strict=True)
    ]
    ids = db.session.scalars(
        insert(_products).returning(_products.c.id, sort_by_parameter_order=True), inserted
    ).all()
    for id, values in zip(ids, inserted, strict=True):
        batch.products[values["sku"].lower()] = {**values, "id": id, "has_variants": False}
        batch.outcome.created.append(values["sku"])
        batch.created.append(values["sku"].lower())
    # Stocked as they are inserted (the ledger's INITIAL rows written alongside).
    record_initial_stock(
        [(id, v["stock"], v["low_stock_threshold"]) for id, v in zip(ids, inserted, strict=True)],
        actor=batch.actor,
        note=batch.note,
    )


def _upsert_variants(batch: _Batch, rows: list[Row]) -> None:
    changed, new = [], []
    for row in rows:
        parent = batch.products.get(row.product_key or "")
        if row.key in batch.products:
            batch.outcome.refuse(row, "sku", f"{row.sku} is a product's SKU, not a variant's.")
            continue
        if parent is None:
            batch.outcome.refuse(
                row,
                "product_sku",
                f"No product {row.product_sku}: it must exist, or come before its variants.",
            )
            continue
        values = dict(row.values)
        stock = values.pop("stock", None)
        held = batch.variants.get(row.key)
        if held is None:
            if not parent["has_variants"] and parent["stock"]:
                batch.outcome.refuse(
                    row,
                    "product_sku",
                    f"{parent['sku']} holds stock of its own: set it to 0 before adding variants.",
                )
            elif _missing(row, values):
                batch.outcome.reject(row)
            else:
                parent["has_variants"] = True
                new.append((row, parent, values, stock or 0))
            continue
        if held["product_id"] != parent["id"]:
            batch.outcome.refuse(row, "product_sku", f"{row.sku} is a variant of another product.")
            continue
        changes = {name: value for name, value in values.items() if held[name] != value}
        held.update(changes)
        if changes:
            changed.append({"id": held["id"], **{name: held[name] for name in VARIANT_FIELDS}})
        moved = stock is not None and stock != held["stock"]
        if moved:
            batch.adjustments.append(Move(parent["id"], held["id"], stock - held["stock"]))
        batch.outcome.changed(held["sku"], bool(changes) or moved)
    update_many(_variants, changed)
    if new:
        _create_variants(batch, new)


def _create_variants(
    batch: _Batch, new: list[tuple[Row, dict[str, Any], dict[str, Any], int]]
) -> None:
    inserted = [
        {
            "product_id": parent["id"],
            "sku": row.sku,
            "name": values["name"],
            "attributes": {},
            "price": values["price"],
            "compare_at_price": values.get("compare_at_price"),
            "stock": 0,
            "is_active": values.get("is_active", True),
        }
        for row, parent, values, _ in new
    ]
    ids = db.session.scalars(
        insert(_variants).returning(_variants.c.id, sort_by_parameter_order=True), inserted
    ).all()
    moves = [
        Move(parent["id"], id, stock)
        for id, (_, parent, _, stock) in zip(ids, new, strict=True)
        if stock
    ]
    change_stocks(moves, type=MovementType.INITIAL, actor=batch.actor, note=batch.note)
    for id, (row, parent, _, stock) in zip(ids, new, strict=True):
        batch.outcome.created.append(row.sku)
        parent["stock"] += stock
        bus.publish(ItemCreated(parent["id"], id, stock, parent["low_stock_threshold"]))
