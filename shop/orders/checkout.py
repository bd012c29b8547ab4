"""Checkout: an order from the given lines or the cart, priced by the server, its stock taken
all or nothing through the one stock path, in one unit of work."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from shop import bus, mail
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import User
from shop.db import db, insert_loaded, unit_of_work
from shop.errors import Conflict, Forbidden, Unprocessable
from shop.merchandising import coupons
from shop.merchandising.coupons import Applied
from shop.merchandising.models import Coupon
from shop.orders import cart as carts
from shop.orders.addresses import own_address, shipping_copy
from shop.orders.events import OrderCreated
from shop.orders.models import (
    Cart,
    CartItem,
    Order,
    OrderItem,
    OrderStatus,
    OrderStatusChange,
    PaymentStatus,
)
from shop.orders.queries import access_key_hash
from shop.orders.schemas import OrderCreate, OrderLineRequest
from shop.products.models import MovementType
from shop.products.sellable import Sellable, for_sale
from shop.products.stock import change_stock
from shop.schemas import CENT
from shop.shipping import services as shipping
from shop.shipping.services import Option
from shop.tax import rates


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


def _shipping_address(user: User | None, data: OrderCreate) -> dict[str, Any]:
    if "address_id" in data:
        if user is None:
            raise Unprocessable(
                "A guest gives a shipping_address.",
                errors={"address_id": ["Saved addresses are for signed-in customers."]},
            )
        return shipping_copy(own_address(user, data["address_id"]))
    return dict(data["shipping_address"])


@dataclass(frozen=True)
class Priced:
    """What these lines come to, shipped to that address: what the order is charged and
    the preview shows, from the same code."""

    lines: list[tuple[Sellable, int]]
    address: dict[str, Any]  # shipped to
    applied: Applied | None
    discounts: list[Decimal]  # per line, the coupon's
    taxes: list[Decimal]  # per line, of its total after discount
    subtotal: Decimal  # the lines before any discount
    discount: Decimal
    shipping: Decimal
    tax: Decimal  # the lines' taxes and shipping's
    total: Decimal
    tax_lines: list[dict[str, str]]
    method: Option | None = None  # what `shipping` is for; None: the flat rate
    # The methods shipping there, each with what these goods pay for it, cheapest first.
    options: tuple[tuple[Option, Decimal], ...] = ()


def price(
    lines: list[tuple[Sellable, int]],
    applied: Applied | None,
    address: dict[str, Any],
    method: Option | None = None,
    options: list[Option] | None = None,
) -> Priced:
    """Shipping by `method` (free from its free_over on), else flat below the free threshold
    (free by coupon either way); the destination's tax rate (tax.rates.for_destination) on
    each line after its discount, and on shipping where the rate says so, each rounded half
    up, so the lines' taxes add up to the order's; added to the total, or inside the prices
    with PRICES_INCLUDE_TAX."""
    config = current_app.config
    zero = Decimal("0.00")
    off = applied.line_discounts if applied else [zero] * len(lines)
    nets = [item.price * quantity - d for (item, quantity), d in zip(lines, off, strict=True)]
    subtotal = sum((item.price * quantity for item, quantity in lines), zero)
    discount = applied.discount if applied else zero
    goods = subtotal - discount
    by_coupon = bool(applied and applied.free_shipping)
    quotes = sorted(
        ((o, o.price_for(goods, free=by_coupon)) for o in options or ()), key=lambda q: q[1]
    )  # a stable sort: list price, then id, among equals
    if method is None and quotes:  # a preview without a choice: the cheapest
        method = quotes[0][0]
    if method is not None:
        shipping = method.price_for(goods, free=by_coupon)
    elif by_coupon or goods >= config["FREE_SHIPPING_THRESHOLD"]:
        shipping = zero
    else:
        shipping = config["SHIPPING_FLAT_RATE"].quantize(CENT)
    rate = rates.for_destination(address["country"], address.get("state", ""))
    included = config["PRICES_INCLUDE_TAX"]
    taxes = [rate.of(net, included=included) for net in nets]
    tax = sum(taxes, zero) + (rate.of(shipping, included=included) if rate.applies_to_shipping
                              else zero)  # fmt: skip
    total = goods + shipping + (zero if included else tax)
    tax_lines = (
        [{"name": rate.name, "rate": str(rate.rate.quantize(RATE)), "amount": str(tax)}]
        if rate.rate
        else []
    )
    return Priced(lines, address, applied, off, taxes, subtotal, discount, shipping, tax,
                  total.quantize(CENT), tax_lines, method, tuple(quotes))  # fmt: skip


RATE = Decimal("0.0001")


def _coupon(data: OrderCreate, cart: Cart | None, *, checkout: bool) -> Coupon | None:
    """The coupon asked for: `coupon_code`, else the cart's when the cart is ordered."""
    if "coupon_code" in data:
        return coupons.find(data["coupon_code"], checkout=checkout)
    return carts.cart_coupon(cart, checkout=checkout) if cart is not None else None


def _requested(
    user: User | None, data: OrderCreate, cart: Cart | None
) -> tuple[list[OrderLineRequest], Cart | None]:
    """The lines asked for (`items`, else the cart's) and the cart when it is ordered (a
    signed-in user's is looked up only then)."""
    if "items" in data:
        return data["items"], None
    if cart is None:
        assert user is not None
        cart = carts.user_cart(user)
    rows: Iterable[CartItem] = (
        db.session.scalars(select(CartItem).where(CartItem.cart_id == cart.id)) if cart.id else []
    )
    lines: list[OrderLineRequest] = [
        {"product_id": c.product_id, "variant_id": c.variant_id, "quantity": c.quantity}
        for c in rows
    ]
    return lines, cart


def _priced(
    user: User | None, data: OrderCreate, cart: Cart | None, *, checkout: bool
) -> tuple[Priced, list[list[int]], Cart | None]:
    """The order asked for, priced: its lines (merged, with the client's indexes behind
    each) and the cart if they are its lines. At `checkout` the coupon's row is
    share-locked and its limit per customer left to the redemption."""
    requested, from_cart = _requested(user, data, cart)
    if not requested:
        # A valid request meeting the cart's state: a conflict, as a short line is.
        raise Conflict("The cart is empty.", errors={"items": ["Nothing to order."]})
    # Errors name the client's own lines: checked as sent, then merged.
    sold = for_sale([(r["product_id"], r.get("variant_id"), r["quantity"]) for r in requested])
    lines, client_indexes = _merge_lines(sold)
    coupon = _coupon(data, from_cart, checkout=checkout)
    # At checkout the customer's own limit is counted once, by the redemption (under its lock);
    # a guest has no account for it to count against.
    customer = None if checkout or user is None else user.id
    applied = coupons.apply(coupon, lines, customer) if coupon else None
    address = _shipping_address(user, data)
    options = shipping.options_for(address["country"])
    method = _shipping_method(data, options, address["country"], required=checkout)
    return price(lines, applied, address, method, options), client_indexes, from_cart


def _shipping_method(
    data: OrderCreate, options: list[Option], country: str, *, required: bool
) -> Option | None:
    """The method asked for (422 unless it ships to `country`); none asked for: a 422 at
    checkout when one ships there (a preview prices the cheapest), else the flat rate."""
    if "shipping_method_id" in data:
        return shipping.chosen(options, data["shipping_method_id"], country)
    if options and required:
        ids = ", ".join(str(o.id) for o in options)
        raise Unprocessable(
            f"Choose how to ship to {country}.",
            errors={"shipping_method_id": [f"Required: one of {ids} (GET /shipping-methods"
                                           f"?country={country})."]},
        )  # fmt: skip
    return None


def preview(user: User | None, data: OrderCreate, cart: Cart | None = None) -> Priced:
    """What POST /orders would charge for the same body now (a guest's: `cart`, no `user`):
    the same code, no writes, no locks; lines short of stock now are a 409 as they would be
    there."""
    priced, client_indexes, _ = _priced(user, data, cart, checkout=False)
    short = {
        str(i): {"quantity": [f"{item.sku}: only {item.stock} in stock."]}
        for (item, quantity), indexes in zip(priced.lines, client_indexes, strict=True)
        if quantity > item.stock
        for i in indexes
    }
    if short:
        raise Conflict("Not enough stock for some lines.", errors={"items": short})
    return priced


def preview_answer(priced: Priced) -> dict[str, Any]:
    lines = [
        {
            "product_id": item.product_id,
            "variant_id": item.variant_id,
            "sku": item.sku,
            "name": item.name,
            "unit_price": item.price,
            "list_price": item.list_price,
            "quantity": quantity,
            "discount": discount,
            "line_total": item.price * quantity - discount,
            "tax": tax,
        }
        for (item, quantity), discount, tax in zip(
            priced.lines, priced.discounts, priced.taxes, strict=True
        )
    ]
    return {
        "lines": lines,
        "subtotal": priced.subtotal,
        "coupon_code": priced.applied.coupon.code if priced.applied else None,
        "discount": priced.discount,
        "shipping_cost": priced.shipping,
        "tax": priced.tax,
        "tax_lines": priced.tax_lines,
        "total": priced.total,
        "currency": current_app.config["CURRENCY"],
        "shipping_method": priced.method.ref() if priced.method else None,
        "shipping_methods": [option.quote(cost) for option, cost in priced.options],
    }


def place_order(user: User | None, data: OrderCreate, cart: Cart | None = None) -> Order:
    """Check out in one unit of work: stock for every line is taken through the one stock
    path, all or nothing; without `items` the cart is ordered and emptied. A guest (no
    `user`, their `cart`) gives an `email`; the order gets an access key, answered once
    (`order.access_key`) and emailed as a link, of which only the SHA-256 is kept."""
    if user is None and "email" not in data:
        raise Unprocessable(
            "A guest's order needs an email.", errors={"email": ["Required without an account."]}
        )
    if (
        user is not None
        and not user.email_verified
        and current_app.config["REQUIRE_VERIFIED_EMAIL"]
    ):
        raise Forbidden(
            f"Verify {user.email} before ordering: the code is in the email we sent"
            " (POST /auth/verify-email/resend sends another)."
        )
    with unit_of_work():
        priced, client_indexes, from_cart = _priced(user, data, cart, checkout=True)
        order = _create_order(user, data, priced)
        if from_cart is not None and from_cart.id is not None:
            carts.empty(from_cart)
        record(
            Action.ORDER_CREATED,
            actor=user,
            target_type=Target.ORDER,
            target_id=order.id,
            changes={"number": order.number, "total": str(order.total)},
        )
        if user is not None:
            mail.queue_email(user.email, "order_created", user=user, order=order)
        else:
            assert order.guest_email is not None
            mail.queue_email(
                order.guest_email,
                "order_created",
                user=None,
                order=order,
                access_key=order.access_key,
            )
        bus.publish(OrderCreated.of(order))
        # Last, so that the product rows (and a coupon's with a total limit) stay locked only
        # from here to the commit (with an Idempotency-Key, also while the answer is stored:
        # see Blueprint.idempotent); the coupon's first, as cancellation gives it back first.
        if priced.applied:
            coupons.redeem(priced.applied.coupon, order.id, user.id if user else None)
        _take_stock(user, order, client_indexes)
    return order


def _create_order(user: User | None, data: OrderCreate, priced: Priced) -> Order:
    """The order, its lines and its first history row: three INSERTs, nothing else (the
    ORM's flush of the same objects costs more than the statements)."""
    key = secrets.token_urlsafe(24) if user is None else None
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
            tax=tax,
        )
        for (item, quantity), discount, tax in zip(
            priced.lines, priced.discounts, priced.taxes, strict=True
        )
    ]
    applied = priced.applied
    order = Order(
        user_id=user.id if user else None,
        guest_email=data["email"].strip() if user is None else None,
        access_key_hash=access_key_hash(key) if key else None,
        status=OrderStatus.PENDING,
        payment_status=PaymentStatus.UNPAID,
        subtotal=priced.subtotal,
        discount=priced.discount,
        coupon_id=applied.coupon.id if applied else None,
        coupon_code=applied.coupon.code if applied else None,
        shipping_cost=priced.shipping,
        shipping_method_id=priced.method.id if priced.method else None,
        shipping_method_name=priced.method.name if priced.method else None,
        shipping_carrier=priced.method.carrier if priced.method else None,
        tax=priced.tax,
        tax_lines=priced.tax_lines,
        total=priced.total,
        currency=current_app.config["CURRENCY"],
        shipping_address=priced.address,
        notes=data.get("notes", ""),
    )
    insert_loaded([order])
    order.access_key = key
    history = [
        OrderStatusChange(
            order_id=order.id, to_status=OrderStatus.PENDING, changed_by=user.id if user else None
        )
    ]
    for item in items:
        item.order_id = order.id
    insert_loaded(items)
    insert_loaded(history)
    set_committed_value(order, "items", items)
    set_committed_value(order, "status_history", history)
    return order


def _take_stock(user: User | None, order: Order, client_indexes: list[list[int]]) -> None:
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
