"""Products and their variants: reads, writes (stock through the ledger), and what may be sold."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import Row, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from shop import bus, media
from shop.audit.models import Action, Target
from shop.audit.services import changes_recorded, record, snapshot
from shop.auth.models import User
from shop.caching import invalidate
from shop.db import Page, db, is_postgres, table_of, unit_of_work
from shop.errors import Conflict, NotFound, Unprocessable
from shop.products.cache import CATALOG, CATALOG_MATCHES
from shop.products.categories import check_category
from shop.products.events import ItemCreated, WentOnSale
from shop.products.models import MovementType, Product, ProductVariant
from shop.products.pricing import current
from shop.products.schemas import ProductCreate, ProductUpdate, VariantCreate, VariantUpdate
from shop.products.slugs import claim_slug, unique_slug
from shop.products.stock import change_stock

PRODUCT_FIELDS = (
    "sku",
    "name",
    "slug",
    "description",
    "price",
    "compare_at_price",
    "stock",
    "low_stock_threshold",
    "category_id",
    "is_active",
    "is_featured",
    "image_url",
)
VARIANT_FIELDS = ("sku", "name", "attributes", "price", "compare_at_price", "stock", "is_active")


def display_name(product_name: str, variant_name: str | None) -> str:
    """How a product, or one of its variants, is named on a line: "Tee (Large)"."""
    return f"{product_name} ({variant_name})" if variant_name else product_name


_products, _variants = table_of(Product), table_of(ProductVariant)
# What a line needs of a product and of one of its variants (None where it has none): read
# with Core, since nothing here is changed (the ORM's loading costs more than the query).
SELLABLE_COLUMNS = (
    _products.c.id.label("product_id"),
    _products.c.sku,
    _products.c.name,
    _products.c.price,
    _products.c.compare_at_price,
    _products.c.stock,
    _products.c.category_id,
    _variants.c.id.label("variant_id"),
    _variants.c.sku.label("variant_sku"),
    _variants.c.name.label("variant_name"),
    _variants.c.price.label("variant_price"),
    _variants.c.compare_at_price.label("variant_compare_at_price"),
    _variants.c.stock.label("variant_stock"),
    _variants.c.is_active.label("variant_active"),
)


@dataclass(frozen=True)
class Sellable:
    """A product, or one variant of it, as a cart or an order line shows it."""

    product_id: int
    variant_id: int | None
    sku: str
    name: str
    price: Decimal
    stock: int
    list_price: Decimal  # off sale: its compare-at price if above its own, else its own
    category_id: int | None

    @classmethod
    def of(cls, row: Row[Any]) -> Sellable:
        """From a row of SELLABLE_COLUMNS: the variant's, where the row has one, at the price
        of the best flash sale running on it, if any."""
        sale = current().best(row.product_id, row.category_id)
        if row.variant_id is None:
            sku, name, price, compare_at, stock = (
                row.sku, row.name, row.price, row.compare_at_price, row.stock
            )  # fmt: skip
        else:
            sku, name, price, compare_at, stock = (
                row.variant_sku, display_name(row.name, row.variant_name), row.variant_price,
                row.variant_compare_at_price, row.variant_stock,
            )  # fmt: skip
        charged = sale.price_of(price) if sale else price
        return cls(row.product_id, row.variant_id, sku, name, charged, stock,
                   max(price, compare_at or price), row.category_id)  # fmt: skip


# --- reads ----------------------------------------------------------------------------------


def get_product(
    product_id: int, *, include_inactive: bool = False, for_update: bool = False
) -> Product:
    """A product; `for_update` locks its row (taken before any variant row, always).

    Read with its variants in one statement; a locking read leaves them to a second one."""
    product = db.session.get(
        Product,
        product_id,
        with_for_update={"of": Product} if for_update else None,
        populate_existing=for_update,
        options=() if for_update else (joinedload(Product.variants),),
    )
    if product is None or not (product.is_active or include_inactive):
        raise NotFound(f"Product {product_id} does not exist.")
    return product


def list_variants(product_id: int, *, include_inactive: bool, page: int, page_size: int) -> Page:
    product = get_product(product_id, include_inactive=include_inactive)
    variants = [v for v in product.variants if v.is_active or include_inactive]
    return Page.of(variants, page, page_size)


def _offers(product_ids: set[int]) -> dict[int, list[Row[Any]]]:
    """The active products among `product_ids`, each with a row per variant (active or not;
    one row, variant None, for a product without variants), in one statement."""
    rows = db.session.execute(
        select(*SELLABLE_COLUMNS)
        .select_from(_products.outerjoin(_variants, _variants.c.product_id == _products.c.id))
        .where(_products.c.id.in_(product_ids), _products.c.is_active.is_(True))
    )
    offers: dict[int, list[Row[Any]]] = {}
    for row in rows:
        offers.setdefault(row.product_id, []).append(row)
    return offers


def _variant_row(rows: list[Row[Any]], variant_id: int) -> Row[Any] | None:
    return next((r for r in rows if r.variant_id == variant_id and r.variant_active), None)


def sellable(product_id: int, variant_id: int | None) -> Sellable:
    """The active product (and variant) a cart line may hold; 404 or 422 otherwise."""
    rows = _offers({product_id}).get(product_id)
    if rows is None:
        raise NotFound(f"Product {product_id} does not exist.")
    if variant_id is None:
        if rows[0].variant_id is not None:
            raise Unprocessable("Choose a variant.", errors={"variant_id": ["Required."]})
        return Sellable.of(rows[0])
    row = _variant_row(rows, variant_id)
    if row is None:
        raise NotFound(f"Product {product_id} has no variant {variant_id}.")
    return Sellable.of(row)


def for_sale(lines: list[tuple[int, int | None, int]]) -> list[tuple[Sellable, int]]:
    """What each (product_id, variant_id, quantity) line of an order sells, read in one
    statement; a 422 names (by its index) every line that is not for sale."""
    offers = _offers({p for p, _, _ in lines})
    resolved, errors = [], {}
    for index, (product_id, variant_id, quantity) in enumerate(lines):
        rows = offers.get(product_id)
        row = None
        if rows is None:
            errors[str(index)] = {"product_id": [f"No product {product_id} for sale."]}
        elif variant_id is None:
            if rows[0].variant_id is not None:
                errors[str(index)] = {"variant_id": ["Required: the product sells by variant."]}
            else:
                row = rows[0]
        else:
            row = _variant_row(rows, variant_id)
            if row is None:
                errors[str(index)] = {"variant_id": [f"No variant {variant_id} for sale."]}
        if row is not None:
            resolved.append((Sellable.of(row), quantity))
    if errors:
        raise Unprocessable("Some lines cannot be ordered.", errors={"items": errors})
    return resolved


# --- writes ---------------------------------------------------------------------------------


def _claim_sku(sku: str, *, product_id: int | None = None, variant_id: int | None = None) -> None:
    """SKUs are unique across products and variants, whatever their case; concurrent claims
    queue on a lock."""
    if is_postgres():
        claim = f"sku:{sku.lower()}"
        db.session.execute(select(func.pg_advisory_xact_lock(func.hashtext(claim))))
    taken_by_product = db.session.scalar(
        select(Product.id).where(
            func.lower(Product.sku) == sku.lower(), Product.id != (product_id or 0)
        )
    )
    taken_by_variant = db.session.scalar(
        select(ProductVariant.id).where(
            func.lower(ProductVariant.sku) == sku.lower(), ProductVariant.id != (variant_id or 0)
        )
    )
    if taken_by_product or taken_by_variant:
        raise Conflict(f"SKU {sku} is already in use.", errors={"sku": ["Already in use."]})


def _write(
    actor: User | None, row: Product | ProductVariant, data: dict[str, Any], *, created: bool
) -> None:
    """The steps every product and variant write takes: claim a new SKU, check the category,
    set the fields, move the stock to `data["stock"]` through the ledger (INITIAL when
    created, else ADJUSTMENT), reload what the database computed, invalidate the catalog."""
    variant = row if isinstance(row, ProductVariant) else None
    if "sku" in data and data["sku"] != row.sku:
        _claim_sku(
            data["sku"],
            product_id=None if variant else row.id,
            variant_id=variant.id if variant else None,
        )
    if isinstance(row, Product) and "slug" in data and data["slug"] != row.slug:
        claim_slug(Product, data["slug"], row.id)
    if "category_id" in data:
        check_category(data["category_id"])
    stock = data.pop("stock", None)
    for name, value in data.items():
        setattr(row, name, value)
    db.session.add(row)
    db.session.flush()
    if stock is not None and stock != row.stock:
        if not created and isinstance(row, Product) and row.variants:
            raise Unprocessable(
                "The stock of a product with variants is the sum of theirs.",
                errors={"stock": ["Change the variants' stock instead."]},
            )
        change_stock(
            product_id=variant.product_id if variant else row.id,
            variant_id=variant.id if variant else None,
            delta=stock - row.stock,
            type=MovementType.INITIAL if created else MovementType.ADJUSTMENT,
            actor=actor,
            note="initial stock" if created else f"{'variant' if variant else 'product'} edit",
        )
    db.session.refresh(row)
    invalidate(CATALOG, CATALOG_MATCHES)


def create_product(actor: User | None, data: ProductCreate) -> Product:
    with unit_of_work():
        product = Product(low_stock_threshold=current_app.config["LOW_STOCK_THRESHOLD"])
        if "slug" not in data:
            product.slug = unique_slug(Product, data["name"])
        _write(actor, product, dict(data), created=True)
        bus.publish(ItemCreated(product.id, None, product.stock, product.low_stock_threshold))
        record(
            Action.PRODUCT_CREATED,
            actor=actor,
            target_type=Target.PRODUCT,
            target_id=product.id,
            changes=snapshot(product, PRODUCT_FIELDS),
        )
    return product


def update_product(actor: User, product_id: int, data: ProductUpdate) -> Product:
    with unit_of_work():
        # Locked, so that "stock becomes N" is exact even among concurrent edits.
        product = get_product(product_id, include_inactive=True, for_update=True)
        was_on_sale = _marked_down(product)
        with changes_recorded(
            Action.PRODUCT_UPDATED,
            actor=actor,
            target_type=Target.PRODUCT,
            target=product,
            fields=PRODUCT_FIELDS,
        ):
            _write(actor, product, dict(data), created=False)
        if _marked_down(product) and not was_on_sale:
            bus.publish(WentOnSale(product_id=product.id, flash_sale_id=None))
    return product


def _marked_down(product: Product) -> bool:
    return product.compare_at_price is not None and product.price < product.compare_at_price


def delete_product(actor: User, product_id: int) -> None:
    """Delete a product; one that order lines refer to is deactivated instead."""
    with unit_of_work():
        product = get_product(product_id, include_inactive=True)
        changes = snapshot(product, PRODUCT_FIELDS)
        files = [key for image in product.images for key in image.keys]
        try:
            with db.session.begin_nested():
                db.session.delete(product)
                db.session.flush()
            action = Action.PRODUCT_DELETED
            media.delete_after_commit(files)  # a deactivated product keeps its images
        except IntegrityError:
            product = get_product(product_id, include_inactive=True)
            product.is_active = False
            action = Action.PRODUCT_DEACTIVATED
        record(
            action, actor=actor, target_type=Target.PRODUCT, target_id=product_id, changes=changes
        )
        invalidate(CATALOG, CATALOG_MATCHES)


def _get_variant(product_id: int, variant_id: int) -> ProductVariant:
    """A product's variant, its rows locked in the fixed order: product, then variant."""
    get_product(product_id, include_inactive=True, for_update=True)
    variant = db.session.scalar(
        select(ProductVariant)
        .where(ProductVariant.id == variant_id, ProductVariant.product_id == product_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if variant is None:
        raise NotFound(f"Product {product_id} has no variant {variant_id}.")
    return variant


def create_variant(actor: User | None, product_id: int, data: VariantCreate) -> ProductVariant:
    with unit_of_work():
        product = get_product(product_id, include_inactive=True)
        has_variants = db.session.scalar(
            select(ProductVariant.id).where(ProductVariant.product_id == product.id).limit(1)
        )
        if not has_variants and product.stock:
            raise Conflict(
                "The product holds stock of its own: set it to 0 before adding variants."
            )
        variant = ProductVariant(product_id=product.id)
        _write(actor, variant, dict(data), created=True)
        bus.publish(ItemCreated(product.id, variant.id, variant.stock, product.low_stock_threshold))
        db.session.expire(product, ["variants"])
        changes = {"product_id": product.id, **snapshot(variant, VARIANT_FIELDS)}
        record(
            Action.VARIANT_CREATED,
            actor=actor,
            target_type=Target.VARIANT,
            target_id=variant.id,
            changes=changes,
        )
    return variant


def update_variant(
    actor: User, product_id: int, variant_id: int, data: VariantUpdate
) -> ProductVariant:
    with unit_of_work():
        variant = _get_variant(product_id, variant_id)
        with changes_recorded(
            Action.VARIANT_UPDATED,
            actor=actor,
            target_type=Target.VARIANT,
            target=variant,
            fields=VARIANT_FIELDS,
        ):
            _write(actor, variant, dict(data), created=False)
    return variant


def delete_variant(actor: User, product_id: int, variant_id: int) -> None:
    with unit_of_work():
        variant = _get_variant(product_id, variant_id)
        changes = {"product_id": product_id, **snapshot(variant, VARIANT_FIELDS)}
        if variant.stock:
            # Its stock leaves the product too, through the ledger.
            change_stock(
                product_id=product_id,
                variant_id=variant.id,
                delta=-variant.stock,
                type=MovementType.ADJUSTMENT,
                actor=actor,
                note="variant deleted",
            )
        db.session.delete(variant)
        db.session.flush()
        # Its images stay the product's (their variant_id is now null).
        db.session.expire(variant.product, ["variants", "images"])
        record(
            Action.VARIANT_DELETED,
            actor=actor,
            target_type=Target.VARIANT,
            target_id=variant_id,
            changes=changes,
        )
        invalidate(CATALOG, CATALOG_MATCHES)
