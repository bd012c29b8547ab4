"""Flash sales as admins set them up (what they do to prices: products.pricing), and the
job that tells the bus when one has started."""

from __future__ import annotations

from typing import Any

from flask import g
from sqlalchemy import select

from shop import bus
from shop.audit.models import Action, Target
from shop.audit.services import changes_recorded, record, snapshot
from shop.auth.models import User
from shop.caching import invalidate
from shop.db import Page, after_commit, get_or_404, paginate, unit_of_work, utcnow
from shop.errors import Unprocessable
from shop.products.cache import CATALOG, CATALOG_MATCHES, FLASH_SALES
from shop.products.events import WentOnSale
from shop.products.models import FlashSale

FIELDS = ("name", "starts_at", "ends_at", "discount_percent", "product_ids", "category_ids")


def list_flash_sales(page: int, page_size: int) -> Page:
    """Running and upcoming, soonest first."""
    stmt = (
        select(FlashSale)
        .where(FlashSale.ends_at > utcnow())
        .order_by(FlashSale.starts_at, FlashSale.id)
    )
    return paginate(stmt, page, page_size)


def get_flash_sale(sale_id: int) -> FlashSale:
    return get_or_404(FlashSale, sale_id)


def _apply(sale: FlashSale, data: dict[str, Any]) -> None:
    if "starts_at" in data and data["starts_at"] > utcnow():
        sale.announced_at = None  # moved ahead: its start is announced when it comes
    sale.scope_to(data)
    for name, value in data.items():
        setattr(sale, name, value)
    if sale.ends_at <= sale.starts_at:
        raise Unprocessable(
            "A flash sale ends after it starts.", errors={"ends_at": ["Must be after starts_at."]}
        )
    if not sale.products and not sale.categories:
        raise Unprocessable(
            "A flash sale needs products or categories.",
            errors={"product_ids": ["Give products, categories or both."]},
        )


def _changed() -> None:
    """Every catalog answer may show other prices; this process reads the sales again."""
    invalidate(CATALOG, CATALOG_MATCHES, FLASH_SALES)
    after_commit(lambda: g.pop("_flash_sales", None))


def create_flash_sale(actor: User, data: dict[str, Any]) -> FlashSale:
    with unit_of_work() as session:
        sale = FlashSale()
        _apply(sale, data)
        session.add(sale)
        session.flush()
        record(
            Action.FLASH_SALE_CREATED,
            actor=actor,
            target_type=Target.FLASH_SALE,
            target_id=sale.id,
            changes=snapshot(sale, FIELDS),
        )
        _changed()
    return sale


def update_flash_sale(actor: User, sale_id: int, data: dict[str, Any]) -> FlashSale:
    with unit_of_work():
        sale = get_or_404(FlashSale, sale_id, for_update=True)
        with changes_recorded(
            Action.FLASH_SALE_UPDATED,
            actor=actor,
            target_type=Target.FLASH_SALE,
            target=sale,
            fields=FIELDS,
        ):
            _apply(sale, data)
        _changed()
    return sale


def delete_flash_sale(actor: User, sale_id: int) -> None:
    """Orders placed during it keep the price they were charged."""
    with unit_of_work() as session:
        sale = get_or_404(FlashSale, sale_id, for_update=True)
        session.delete(sale)
        record(
            Action.FLASH_SALE_DELETED,
            actor=actor,
            target_type=Target.FLASH_SALE,
            target_id=sale_id,
            changes={"name": sale.name},
        )
        _changed()


def announce_started() -> dict[str, Any]:
    """The periodic job: publish WentOnSale once for each flash sale that has started and
    not ended (a sale row is claimed under its lock: two runs at once announce it once)."""
    announced = []
    with unit_of_work() as session:
        moment = utcnow()
        for sale in session.scalars(
            select(FlashSale)
            .where(
                FlashSale.starts_at <= moment,
                FlashSale.ends_at > moment,
                FlashSale.announced_at.is_(None),
            )
            .with_for_update(skip_locked=True)
        ):
            sale.announced_at = moment
            bus.publish(WentOnSale(product_id=None, flash_sale_id=sale.id))
            announced.append(sale.id)
    return {"announced": announced}
