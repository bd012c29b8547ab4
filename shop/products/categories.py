"""The category tree."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from shop import media
from shop.audit.models import Action, Target
from shop.audit.services import changes_recorded, record, snapshot
from shop.auth.models import User
from shop.caching import invalidate
from shop.db import Page, db, get_or_404, is_postgres, paginate, unit_of_work
from shop.errors import Conflict, Unprocessable
from shop.products.cache import CATALOG, CATALOG_MATCHES, FLASH_SALES
from shop.products.models import Category, Product
from shop.products.schemas import CategoryCreate, CategoryUpdate
from shop.products.slugs import claim_slug, unique_slug

CATEGORY_FIELDS = ("name", "slug", "description", "parent_id", "is_active")


def list_categories(
    *, page: int, page_size: int, include_inactive: bool, parent_id: int | None = None
) -> Page:
    stmt = (
        select(Category).options(selectinload(Category.image)).order_by(Category.name, Category.id)
    )
    if not include_inactive:
        stmt = stmt.where(Category.is_active.is_(True))
    if parent_id is not None:
        stmt = stmt.where(Category.parent_id == parent_id)
    return paginate(stmt, page, page_size)


def get_category(category_id: int, *, include_inactive: bool = False) -> Category:
    return get_or_404(
        Category, category_id, visible=lambda c: bool(c.is_active or include_inactive)
    )


def check_category(category_id: int | None) -> None:
    """A product's category must exist (422 otherwise)."""
    if category_id is not None and db.session.get(Category, category_id) is None:
        raise Unprocessable("Unknown category.", errors={"category_id": ["No such category."]})


def _check_parent(category: Category | None, parent_id: int | None) -> None:
    if parent_id is None:
        return
    parent = db.session.get(Category, parent_id)
    if parent is None:
        raise Unprocessable("Unknown parent.", errors={"parent_id": ["No such category."]})
    # Walk up from the new parent: meeting the category itself would make a cycle.
    seen: set[int] = set()
    while category is not None and parent is not None and parent.id not in seen:
        if parent.id == category.id:
            raise Conflict("A category cannot be inside itself.")
        seen.add(parent.id)
        parent = db.session.get(Category, parent.parent_id) if parent.parent_id else None


def _check_name(name: str, parent_id: int | None, own_id: int | None) -> None:
    """Sibling categories have different names, whatever their case; concurrent claims of one
    name queue on a lock."""
    if is_postgres():
        claim = f"category:{parent_id or 0}:{name.lower()}"
        db.session.execute(select(func.pg_advisory_xact_lock(func.hashtext(claim))))
    sibling = db.session.scalar(
        select(Category.id).where(
            func.lower(Category.name) == name.lower(),
            Category.parent_id.is_(None) if parent_id is None else Category.parent_id == parent_id,
            Category.id != (own_id or 0),
        )
    )
    if sibling:
        raise Conflict(
            f"A category named {name} is already there.",
            errors={"name": ["Another category of the same parent has this name."]},
        )


def _record(
    actor: User | None, action: Action, category_id: int, changes: dict[str, object]
) -> None:
    record(action, actor=actor, target_type=Target.CATEGORY, target_id=category_id, changes=changes)
    invalidate(CATALOG, CATALOG_MATCHES, FLASH_SALES)


def create_category(actor: User | None, data: CategoryCreate) -> Category:
    with unit_of_work():
        _check_parent(None, data.get("parent_id"))
        _check_name(data["name"], data.get("parent_id"), None)
        if "slug" in data:
            claim_slug(Category, data["slug"], None)
        category = Category(**data)
        category.slug = data.get("slug") or unique_slug(Category, data["name"])
        db.session.add(category)
        db.session.flush()
        _record(actor, Action.CATEGORY_CREATED, category.id, snapshot(category, CATEGORY_FIELDS))
    return category


def update_category(actor: User, category_id: int, data: CategoryUpdate) -> Category:
    with unit_of_work():
        category = get_category(category_id, include_inactive=True)
        if "parent_id" in data:
            _check_parent(category, data["parent_id"])
        if "name" in data or "parent_id" in data:
            _check_name(
                data.get("name", category.name),
                data.get("parent_id", category.parent_id),
                category.id,
            )
        if "slug" in data and data["slug"] != category.slug:
            claim_slug(Category, data["slug"], category.id)
        with changes_recorded(
            Action.CATEGORY_UPDATED,
            actor=actor,
            target_type=Target.CATEGORY,
            target=category,
            fields=CATEGORY_FIELDS,
        ):
            for name, value in data.items():
                setattr(category, name, value)
            db.session.flush()
        invalidate(CATALOG, CATALOG_MATCHES, FLASH_SALES)
    return category


def delete_category(actor: User, category_id: int) -> None:
    with unit_of_work():
        category = get_category(category_id, include_inactive=True)
        if db.session.scalar(select(Category.id).where(Category.parent_id == category_id).limit(1)):
            raise Conflict("The category has subcategories; move or delete them first.")
        if db.session.scalar(select(Product.id).where(Product.category_id == category_id).limit(1)):
            raise Conflict("The category has products; move or delete them first.")
        _record(actor, Action.CATEGORY_DELETED, category.id, snapshot(category, CATEGORY_FIELDS))
        if category.image is not None:
            media.delete_after_commit(category.image.keys)
        db.session.delete(category)
