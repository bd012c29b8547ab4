"""What a seller sees of the orders holding their products: those orders, each with only the
seller's own lines, the address to ship them to and the shipments carrying those lines
(auth.policy.SELLER_LINES)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import noload

from shop.auth.models import User
from shop.auth.policy import SELLER_LINES
from shop.db import Page, db, paginate
from shop.orders.models import Order, OrderItem
from shop.orders.shipment_models import Shipment, ShipmentEvent, ShipmentItem
from shop.products.models import Product


@dataclass
class SellerShipment:
    """A shipment with only the seller's lines' units in `items`."""

    id: int
    order_id: int
    carrier: str
    tracking_number: str
    status: str
    items: list[ShipmentItem]
    events: list[ShipmentEvent]
    created_at: datetime
    updated_at: datetime


@dataclass
class SellerOrder:
    id: int
    number: str
    status: str
    payment_status: str
    currency: str
    shipping_address: dict[str, Any]
    items: list[OrderItem]
    shipments: list[SellerShipment]
    created_at: datetime

    @property
    def total(self) -> Decimal:
        """What the seller's lines come to (after discounts, before tax and shipping)."""
        return sum((line.line_total for line in self.items), Decimal("0.00"))


def list_seller_orders(
    seller: User, *, page: int, page_size: int, status: str | None = None
) -> Page:
    """The orders holding the seller's products, newest first: one query for the page, one
    for its count, one for the seller's lines on it, two for the shipments carrying those
    lines (their units of them, then the shipments with their events)."""
    theirs = SELLER_LINES.scope(seller, Product.seller_id)
    holding = (
        select(OrderItem.order_id).join(Product, Product.id == OrderItem.product_id).where(theirs)
    )
    stmt = (
        select(Order)
        .where(Order.id.in_(holding))
        .options(noload(Order.items), noload(Order.status_history))
        .order_by(Order.created_at.desc(), Order.id.desc())
    )
    if status is not None:
        stmt = stmt.where(Order.status == status)
    found = paginate(stmt, page, page_size)
    lines: dict[int, list[OrderItem]] = defaultdict(list)
    if found.items:
        for line in db.session.scalars(
            select(OrderItem)
            .join(Product, Product.id == OrderItem.product_id)
            .where(OrderItem.order_id.in_([order.id for order in found.items]), theirs)
            .order_by(OrderItem.id)
        ):
            lines[line.order_id].append(line)
    shipments = _shipments_of([line.id for order_lines in lines.values() for line in order_lines])
    found.items = [
        SellerOrder(
            order.id,
            order.number,
            order.status,
            order.payment_status,
            order.currency,
            order.shipping_address,
            lines[order.id],
            shipments[order.id],
            order.created_at,
        )
        for order in found.items
    ]
    return found


def _shipments_of(line_ids: list[int]) -> dict[int, list[SellerShipment]]:
    """The shipments carrying units of these lines, per order, each with only those units."""
    carried: dict[int, list[ShipmentItem]] = defaultdict(list)
    if line_ids:
        for unit in db.session.scalars(
            select(ShipmentItem)
            .where(ShipmentItem.order_item_id.in_(line_ids))
            .order_by(ShipmentItem.id)
        ):
            carried[unit.shipment_id].append(unit)
    found: dict[int, list[SellerShipment]] = defaultdict(list)
    if carried:
        for shipment in db.session.scalars(
            select(Shipment)
            .where(Shipment.id.in_(carried))
            .options(noload(Shipment.items))
            .order_by(Shipment.id)
        ):
            found[shipment.order_id].append(
                SellerShipment(
                    shipment.id,
                    shipment.order_id,
                    shipment.carrier,
                    shipment.tracking_number,
                    shipment.status,
                    carried[shipment.id],
                    shipment.events,
                    shipment.created_at,
                    shipment.updated_at,
                )
            )
    return found
