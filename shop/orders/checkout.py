"""Checkout: an order from the given lines or the cart, priced by the server, its stock taken
all or nothing through the one stock path, in one unit of work."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.orm.attributes import set_committed_value

from shop import bus, mail
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import User
from shop.db import db, insert_loaded, unit_of_work
from shop.errors import Conflict
from shop.merchandising import coupons
from shop.merchandising.coupons import Applied
from shop.merchandising.models import Coupon
from shop.orders.addresses import own_address, shipping_copy
from shop.orders.cart import cart_coupon
from shop.orders.events import OrderCreated
from shop.orders.models import (
    CartCoupon,
    CartItem,
    Order,
    OrderItem,
    OrderStatus,
    OrderStatusChange,
    PaymentStatus,
)
from shop.orders.schemas import OrderCreate, OrderLineRequest
from shop.products.catalog import Sellable, for_sale
from shop.products.models import MovementType
from shop.products.stock import change_stock
from shop.schemas import CENT


def _merge_lines(
    sold: list[tuple[Sellable, int]],
) -> tuple[list[tuple[Sellable, int]], list[list[int]]]:
    """One line per product (or variant), sorted in the lock order every stock change follows
    (so checkouts cannot deadlock), with the client's line indexes behind each."""
    merged: dict[tuple[int, int | None], tuple[Sellable, int, list[int]]] = {}
    for index, (item, quantity) in enumerate(sold):
        key = (item.product_id, item.variant_id)
        _, before, indexes = merged.get(key, (item, 0, []))
        merged[key] = (item, before + quantity, [*indexes, index])
    ordered = [merged[key] for key in sorted(merged, key=lambda k: (k[0], k[1] or 0))]
    return [(item, quantity) for item, quantity, _ in ordered], [i for _, _, i in ordered]


def _shipping_address(user: User, data: OrderCreate) -> dict[str, Any]:
    if "address_id" in data:
        return shipping_copy(own_address(user, data["address_id"]))
    return dict(data["shipping_address"])


def totals(
    subtotal: Decimal, discount: Decimal, *, free_shipping: bool = False
) -> tuple[Decimal, Decimal, Decimal]:
    """(shipping, tax, total) of the lines after their discount: flat shipping below the free
    threshold (or free by coupon), tax rounded half up."""
    config = current_app.config
    goods = subtotal - discount
    shipping = (
        Decimal("0.00")
        if free_shipping or goods >= config["FREE_SHIPPING_THRESHOLD"]
        else config["SHIPPING_FLAT_RATE"]
    )
    tax = (goods * config["TAX_RATE"]).quantize(CENT, rounding=ROUND_HALF_UP)
    return shipping.quantize(CENT), tax, (goods + shipping + tax).quantize(CENT)


def _coupon(user: User, data: OrderCreate, from_cart: bool) -> Coupon | None:
    """The coupon asked for: `coupon_code`, else the cart's when the cart is ordered."""
    if "coupon_code" in data:
        return coupons.find(data["coupon_code"], checkout=True)
    return cart_coupon(user, checkout=True) if from_cart else None


def place_order(user: User, data: OrderCreate) -> Order:
    """Check out in one unit of work: stock for every line is taken through the one stock
    path, all or nothing; without `items` the cart is ordered and emptied."""
    with unit_of_work():
        from_cart = "items" not in data
        requested: list[OrderLineRequest] = (
            data["items"]
            if not from_cart
            else [
                {"product_id": c.product_id, "variant_id": c.variant_id, "quantity": c.quantity}
                for c in db.session.scalars(select(CartItem).where(CartItem.user_id == user.id))
            ]
        )
        if not requested:
            # A valid request meeting the cart's state: a conflict, as a short line is.
            raise Conflict("The cart is empty.", errors={"items": ["Nothing to order."]})
        # Errors name the client's own lines: checked as sent, then merged.
        sold = for_sale([(r["product_id"], r.get("variant_id"), r["quantity"]) for r in requested])
        lines, client_indexes = _merge_lines(sold)
        coupon = _coupon(user, data, from_cart)
        # The customer's own limit is counted once, by the redemption (under its lock).
        applied = coupons.apply(coupon, lines) if coupon else None
        order = _create_order(user, data, lines, applied)
        if from_cart:
            db.session.execute(delete(CartItem).where(CartItem.user_id == user.id))
            db.session.execute(delete(CartCoupon).where(CartCoupon.user_id == user.id))
        record(
            Action.ORDER_CREATED,
            actor=user,
            target_type=Target.ORDER,
            target_id=order.id,
            changes={"number": order.number, "total": str(order.total)},
        )
        mail.queue_email(user.email, "order_created", user=user, order=order)
        bus.publish(OrderCreated.of(order))
        # Last, so that the product rows (and a coupon's with a total limit) stay locked only
        # from here to the commit (with an Idempotency-Key, also while the answer is stored:
        # see Blueprint.idempotent); the coupon's first, as cancellation gives it back first.
        if applied:
            coupons.redeem(applied.coupon, order.id, user.id)
        _take_stock(user, order, client_indexes)
    return order


def _create_order(
    user: User, data: OrderCreate, lines: list[tuple[Sellable, int]], applied: Applied | None
) -> Order:
    """The order, its lines and its first history row: three INSERTs, nothing else (the
    ORM's flush of the same objects costs more than the statements)."""
    off = applied.line_discounts if applied else [Decimal("0.00")] * len(lines)
    items = [
        OrderItem(
            product_id=item.product_id,
            variant_id=item.variant_id,
            sku=item.sku,
            name=item.name,
            unit_price=item.price,
            list_price=item.list_price,
            quantity=quantity,
            discount=discount,
            line_total=item.price * quantity - discount,
        )
        for (item, quantity), discount in zip(lines, off, strict=True)
    ]
    subtotal = sum((item.price * quantity for item, quantity in lines), Decimal("0.00"))
    discount = applied.discount if applied else Decimal("0.00")
    shipping, tax, total = totals(
        subtotal, discount, free_shipping=bool(applied and applied.free_shipping)
    )
    order = Order(
        user_id=user.id,
        status=OrderStatus.PENDING,
        payment_status=PaymentStatus.UNPAID,
        subtotal=subtotal,
        discount=discount,
        coupon_id=applied.coupon.id if applied else None,
        coupon_code=applied.coupon.code if applied else None,
        shipping_cost=shipping,
        tax=tax,
        total=total,
        currency=current_app.config["CURRENCY"],
        shipping_address=_shipping_address(user, data),
        notes=data.get("notes", ""),
    )
    insert_loaded([order])
    history = [
        OrderStatusChange(order_id=order.id, to_status=OrderStatus.PENDING, changed_by=user.id)
    ]
    for item in items:
        item.order_id = order.id
    insert_loaded(items)
    insert_loaded(history)
    set_committed_value(order, "items", items)
    set_committed_value(order, "status_history", history)
    return order


def _take_stock(user: User, order: Order, client_indexes: list[list[int]]) -> None:
    short = {}
    for item, indexes in zip(order.items, client_indexes, strict=True):
        try:
            change_stock(
                product_id=item.product_id,
                variant_id=item.variant_id,
                delta=-item.quantity,
                type=MovementType.SALE,
                actor=user,
                reference=order.number,
            )
        except Conflict as error:
            short.update({str(i): {"quantity": [f"{item.sku}: {error.detail}"]} for i in indexes})
    if short:
        raise Conflict("Not enough stock for some lines.", errors={"items": short})
