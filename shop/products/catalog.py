"""Products and their variants: reads, writes (stock through the ledger), and what may be sold."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from shop import bus, media
from shop.audit.models import Action, Target
from shop.audit.services import changes_recorded, record, snapshot
from shop.auth.models import User
from shop.auth.policy import PRODUCTS
from shop.caching import invalidate
from shop.db import Page, db, is_postgres, unit_of_work
from shop.errors import Conflict, NotFound, Unprocessable
from shop.products.cache import CATALOG, CATALOG_MATCHES
from shop.products.categories import check_category
from shop.products.events import ItemCreated, WentOnSale
from shop.products.models import MovementType, Product, ProductVariant
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
    "seller_id",
)
VARIANT_FIELDS = ("sku", "name", "attributes", "price", "compare_at_price", "stock", "is_active")


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


def managed_product(actor: User | None, product_id: int, *, for_update: bool = False) -> Product:
    """A product `actor` may change, image, stock or delete (auth.policy.PRODUCTS: an admin
    any, a seller theirs; None is the system itself, e.g. an import); anyone else's is a 404."""
    product = get_product(product_id, include_inactive=True, for_update=for_update)
    if actor is not None:
        PRODUCTS.check(actor, product.seller_id, f"Product {product_id}")
    return product


def list_variants(product_id: int, *, include_inactive: bool, page: int, page_size: int) -> Page:
    product = get_product(product_id, include_inactive=include_inactive)
    variants = [v for v in product.variants if v.is_active or include_inactive]
    return Page.of(variants, page, page_size)


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
        product = Product(
            low_stock_threshold=current_app.config["LOW_STOCK_THRESHOLD"],
            seller_id=PRODUCTS.owner_for(actor) if actor else None,
        )
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
        product = managed_product(actor, product_id, for_update=True)
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
        product = managed_product(actor, product_id)
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


def _get_variant(actor: User, product_id: int, variant_id: int) -> ProductVariant:
    """A product's variant `actor` may change, its rows locked in the fixed order: product,
    then variant."""
    managed_product(actor, product_id, for_update=True)
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
        product = managed_product(actor, product_id)
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
        variant = _get_variant(actor, product_id, variant_id)
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
        variant = _get_variant(actor, product_id, variant_id)
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
