"""Images of products (and of their variants) and of categories. An upload is checked and
re-encoded (shop.imaging) before any transaction, stored (shop.media) in the unit of work that
records it (removed again if it rolls back); a product's images keep positions 1 to n; files
let go of are removed after the commit."""

from __future__ import annotations

import os
import uuid
from typing import Any

from flask import current_app
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from shop import imaging, media
from shop.audit.models import Action, Target
from shop.audit.services import changes_recorded, record, snapshot
from shop.auth.models import User
from shop.caching import invalidate
from shop.db import Page, db, get_or_404, unit_of_work
from shop.errors import Conflict, NotFound, TooLarge, Unprocessable
from shop.products.cache import CATALOG
from shop.products.catalog import get_product, managed_product
from shop.products.categories import get_category
from shop.products.models import Category, CategoryImage, Product, ProductImage, ProductVariant
from shop.products.schemas import (
    MAX_IMAGES,
    CategoryImageUpload,
    ImageUpdate,
    ImageUpload,
)

IMAGE_FIELDS = ("alt", "position", "variant_id", "key")


def _prepared(upload: FileStorage, folder: str) -> tuple[list[media.File], dict[str, Any]]:
    """The files to store for an upload (under new keys in `folder`) and the columns that
    name them; 413 past UPLOAD_MAX_BYTES, 422 for anything but a sound JPEG, PNG or WebP."""
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    stream = upload.stream
    if stream.seek(0, os.SEEK_END) > limit:
        raise TooLarge(f"The file is larger than {limit // (1024 * 1024)} MiB.")
    stream.seek(0)
    processed = imaging.process(stream, max_pixels=current_app.config["IMAGE_MAX_PIXELS"])
    base = f"{folder}/{uuid.uuid4().hex}"
    image, thumbnail, webp = processed.image, processed.thumbnail, processed.thumbnail_webp
    files = [
        media.File(f"{base}.{image.extension}", image.data, image.content_type),
        media.File(f"{base}-thumb.{thumbnail.extension}", thumbnail.data, thumbnail.content_type),
        media.File(f"{base}-thumb.{webp.extension}", webp.data, webp.content_type),
    ]
    columns = {
        "key": files[0].key,
        "thumbnail_key": files[1].key,
        "thumbnail_webp_key": files[2].key,
        "width": image.width,
        "height": image.height,
    }
    return files, columns


def _check_variant(product_id: int, variant_id: int | None) -> None:
    if variant_id is None:
        return
    found = db.session.scalar(
        select(ProductVariant.id).where(
            ProductVariant.id == variant_id, ProductVariant.product_id == product_id
        )
    )
    if found is None:
        message = f"Product {product_id} has no variant {variant_id}."
        raise Unprocessable(message, errors={"variant_id": [message]})


def _image_of(product: Product, image_id: int) -> ProductImage:
    image = next((i for i in product.images if i.id == image_id), None)
    if image is None:
        raise NotFound(f"Product {product.id} has no image {image_id}.")
    return image


def _place(product: Product, image: ProductImage, position: int | None) -> None:
    """Put `image` at `position` (past the end, or None: last) and number them all 1 to n."""
    images = [i for i in product.images if i is not image]
    images.insert(len(images) if position is None else position - 1, image)
    for number, each in enumerate(images, 1):
        each.position = number
    product.images = images


# --- product images -------------------------------------------------------------------------


def list_images(product_id: int, *, include_inactive: bool, page: int, page_size: int) -> Page:
    product = get_product(product_id, include_inactive=include_inactive)
    return Page.of(product.images, page, page_size)


def get_image(product_id: int, image_id: int, *, include_inactive: bool) -> ProductImage:
    return _image_of(get_product(product_id, include_inactive=include_inactive), image_id)


def add_image(actor: User, product_id: int, data: ImageUpload) -> ProductImage:
    managed_product(actor, product_id)  # 404, 422 before an upload is decoded
    _check_variant(product_id, data.get("variant_id"))
    files, columns = _prepared(data["file"], f"products/{product_id}")
    with unit_of_work():
        media.save(files)
        product = managed_product(actor, product_id, for_update=True)
        if len(product.images) >= MAX_IMAGES:
            raise Conflict(f"A product has at most {MAX_IMAGES} images.")
        image = ProductImage(
            product_id=product.id,
            variant_id=data.get("variant_id"),
            alt=data.get("alt", ""),
            **columns,
        )
        _place(product, image, data.get("position"))
        db.session.flush()
        record(
            Action.PRODUCT_IMAGE_CREATED,
            actor=actor,
            target_type=Target.PRODUCT_IMAGE,
            target_id=image.id,
            changes={"product_id": product.id, **snapshot(image, IMAGE_FIELDS)},
        )
        invalidate(CATALOG)
    return image


def update_image(actor: User, product_id: int, image_id: int, data: ImageUpdate) -> ProductImage:
    with unit_of_work():
        product = managed_product(actor, product_id, for_update=True)
        image = _image_of(product, image_id)
        if "variant_id" in data:
            _check_variant(product_id, data["variant_id"])
        with changes_recorded(
            Action.PRODUCT_IMAGE_UPDATED,
            actor=actor,
            target_type=Target.PRODUCT_IMAGE,
            target=image,
            fields=IMAGE_FIELDS,
        ):
            if "alt" in data:
                image.alt = data["alt"]
            if "variant_id" in data:
                image.variant_id = data["variant_id"]
            if "position" in data:
                _place(product, image, min(data["position"], len(product.images)))
            db.session.flush()
        invalidate(CATALOG)
    return image


def delete_image(actor: User, product_id: int, image_id: int) -> None:
    with unit_of_work():
        product = managed_product(actor, product_id, for_update=True)
        image = _image_of(product, image_id)
        changes = {"product_id": product.id, **snapshot(image, IMAGE_FIELDS)}
        product.images.remove(image)
        for number, each in enumerate(product.images, 1):
            each.position = number
        db.session.flush()
        record(
            Action.PRODUCT_IMAGE_DELETED,
            actor=actor,
            target_type=Target.PRODUCT_IMAGE,
            target_id=image_id,
            changes=changes,
        )
        media.delete_after_commit(image.keys)
        invalidate(CATALOG)


# --- category images ------------------------------------------------------------------------


def set_category_image(actor: User, category_id: int, data: CategoryImageUpload) -> Category:
    """Give a category its image, in place of the one it had."""
    get_category(category_id, include_inactive=True)
    files, columns = _prepared(data["file"], f"categories/{category_id}")
    with unit_of_work():
        media.save(files)
        category = get_or_404(Category, category_id, for_update=True)
        image = category.image
        replaced = image.keys if image else ()
        if image is None:
            category.image = CategoryImage(**columns)
        else:
            for name, value in columns.items():
                setattr(image, name, value)
        db.session.flush()
        media.delete_after_commit(replaced)
        changes = {"key": columns["key"], "replaced": replaced[0] if replaced else None}
        record(
            Action.CATEGORY_IMAGE_SET,
            actor=actor,
            target_type=Target.CATEGORY,
            target_id=category.id,
            changes=changes,
        )
        invalidate(CATALOG)
    return category


def remove_category_image(actor: User, category_id: int) -> None:
    """Take a category's image away (nothing to do when it has none)."""
    with unit_of_work():
        category = get_or_404(Category, category_id, for_update=True)
        image = category.image
        if image is None:
            return
        category.image = None
        db.session.flush()
        record(
            Action.CATEGORY_IMAGE_REMOVED,
            actor=actor,
            target_type=Target.CATEGORY,
            target_id=category.id,
            changes={"key": image.key},
        )
        media.delete_after_commit(image.keys)
        invalidate(CATALOG)
