"""Orders: cart, addresses, checkout with idempotency, the status machine, payments."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import raiseload

from shop import mail
from shop.audit.services import record
from shop.auth.models import User
from shop.caching import REPORTS, invalidate
from shop.db import Page, insert_ignoring_conflicts, paginate, unit_of_work, utcnow
from shop.errors import Conflict, NotFound, Unauthorized, Unprocessable
from shop.extensions import db
from shop.inventory.models import MovementType
from shop.inventory.services import change_stock
from shop.orders.models import (
    TRANSITIONS,
    Address,
    CartItem,
    IdempotencyKey,
    Order,
    OrderItem,
    OrderStatus,
    OrderStatusChange,
    Payment,
    PaymentMethod,
    PaymentStatus,
)
from shop.products.models import Product, ProductVariant
from shop.reports.services import mark_dirty
from shop.schemas import CENT
from shop.security import Role

MAX_ADDRESSES = 20
ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postal_code", "country", "phone")


def _is_staff(user: User) -> bool:
    return user.has_role(Role.STAFF)


# --- cart -----------------------------------------------------------------------------------


def _sellable(product_id: int, variant_id: int | None) -> tuple[Product, ProductVariant | None]:
    """The active product (and variant) a line may hold; 404 or 422 otherwise."""
    product = db.session.get(Product, product_id)
    if product is None or not product.is_active:
        raise NotFound(f"Product {product_id} does not exist.")
    variants = [v for v in product.variants if v.is_active]
    if variant_id is None:
        if product.variants:
            raise Unprocessable("Choose a variant.", errors={"variant_id": ["Required."]})
        return product, None
    variant = next((v for v in variants if v.id == variant_id), None)
    if variant is None:
        raise NotFound(f"Product {product_id} has no variant {variant_id}.")
    return product, variant


def _check_available(product: Product, variant: ProductVariant | None, quantity: int) -> None:
    available = variant.stock if variant else product.stock
    if quantity > available:
        raise Conflict(
            f"Only {available} in stock.", errors={"quantity": [f"{available} available"]}
        )


def cart_lines(user: User) -> list[dict[str, Any]]:
    rows = db.session.execute(
        select(CartItem, Product, ProductVariant)
        .join(Product, Product.id == CartItem.product_id)
        .outerjoin(ProductVariant, ProductVariant.id == CartItem.variant_id)
        .where(CartItem.user_id == user.id)
        .order_by(CartItem.id)
    ).all()
    return [_cart_line(item, product, variant) for item, product, variant in rows]


def _cart_line(item: CartItem, product: Product, variant: ProductVariant | None) -> dict[str, Any]:
    price = variant.price if variant else product.price
    return {
        "id": item.id,
        "product_id": item.product_id,
        "variant_id": item.variant_id,
        "sku": variant.sku if variant else product.sku,
        "name": f"{product.name} ({variant.name})" if variant else product.name,
        "unit_price": price,
        "quantity": item.quantity,
        "line_total": price * item.quantity,
    }


def get_cart(user: User) -> dict[str, Any]:
    lines = cart_lines(user)
    return {
        "items": lines,
        "subtotal": sum((line["line_total"] for line in lines), Decimal("0.00")),
        "item_count": sum(line["quantity"] for line in lines),
    }


def add_to_cart(user: User, data: dict[str, Any]) -> dict[str, Any]:
    with unit_of_work():
        product, variant = _sellable(data["product_id"], data.get("variant_id"))
        item = db.session.scalar(
            select(CartItem)
            .where(
                CartItem.user_id == user.id,
                CartItem.product_id == product.id,
                func.coalesce(CartItem.variant_id, 0) == (variant.id if variant else 0),
            )
            .with_for_update()
        )
        quantity = data["quantity"] + (item.quantity if item else 0)
        _check_available(product, variant, quantity)
        if item is None:
            item = CartItem(
                user_id=user.id,
                product_id=product.id,
                variant_id=variant.id if variant else None,
                quantity=quantity,
            )
            db.session.add(item)
        item.quantity = quantity
        db.session.flush()
    return _cart_line(item, product, variant)


def _own_cart_item(user: User, item_id: int) -> CartItem:
    item = db.session.get(CartItem, item_id)
    if item is None or item.user_id != user.id:
        raise NotFound(f"Cart line {item_id} does not exist.")
    return item


def update_cart_item(user: User, item_id: int, quantity: int) -> dict[str, Any]:
    with unit_of_work():
        item = _own_cart_item(user, item_id)
        product, variant = _sellable(item.product_id, item.variant_id)
        _check_available(product, variant, quantity)
        item.quantity = quantity
    return _cart_line(item, product, variant)


def remove_cart_item(user: User, item_id: int) -> None:
    with unit_of_work():
        db.session.delete(_own_cart_item(user, item_id))


def clear_cart(user: User) -> None:
    with unit_of_work():
        db.session.execute(delete(CartItem).where(CartItem.user_id == user.id))


# --- addresses ------------------------------------------------------------------------------


def list_addresses(user: User) -> list[Address]:
    return list(
        db.session.scalars(select(Address).where(Address.user_id == user.id).order_by(Address.id))
    )


def _own_address(user: User, address_id: int) -> Address:
    address = db.session.get(Address, address_id)
    if address is None or address.user_id != user.id:
        raise NotFound(f"Address {address_id} does not exist.")
    return address


def _make_default(user: User, address: Address) -> None:
    db.session.execute(
        update(Address)
        .where(Address.user_id == user.id, Address.id != address.id)
        .values(is_default=False)
    )
    address.is_default = True


def create_address(user: User, data: dict[str, Any]) -> Address:
    with unit_of_work():
        existing = (
            db.session.scalar(
                select(func.count()).select_from(Address).where(Address.user_id == user.id)
            )
            or 0
        )
        if existing >= MAX_ADDRESSES:
            raise Conflict(f"At most {MAX_ADDRESSES} addresses per account.")
        wants_default = data.pop("is_default", False) or existing == 0
        address = Address(user_id=user.id, **data)
        db.session.add(address)
        db.session.flush()
        if wants_default:
            _make_default(user, address)
    return address


def update_address(user: User, address_id: int, data: dict[str, Any]) -> Address:
    with unit_of_work():
        address = _own_address(user, address_id)
        wants_default = data.pop("is_default", None)
        for name, value in data.items():
            setattr(address, name, value)
        if wants_default:
            _make_default(user, address)
        elif wants_default is False:
            address.is_default = False
    return address


def delete_address(user: User, address_id: int) -> None:
    with unit_of_work():
        db.session.delete(_own_address(user, address_id))


# --- checkout -------------------------------------------------------------------------------


def _fingerprint(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _claim_idempotency_key(user: User, key: str, fingerprint: str) -> IdempotencyKey | None:
    """Claim `key` for this request, or return the earlier request's row.

    The INSERT waits while a concurrent request holds the same key uncommitted, so the
    second of two simultaneous requests sees the first one's stored answer.
    """
    now = utcnow()
    db.session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user.id,
            IdempotencyKey.key == key,
            IdempotencyKey.expires_at < now,
        )
    )
    claimed = db.session.scalar(
        insert_ignoring_conflicts(IdempotencyKey)
        .values(
            user_id=user.id,
            key=key,
            fingerprint=fingerprint,
            expires_at=now + current_app.config["IDEMPOTENCY_KEY_TTL"],
        )
        .returning(IdempotencyKey.id)
    )
    if claimed is not None:
        return None
    earlier = db.session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user.id, IdempotencyKey.key == key)
    )
    assert earlier is not None
    if earlier.fingerprint != fingerprint:
        raise Conflict("This Idempotency-Key was used with another request body.")
    if earlier.response_body is None:
        raise Conflict("A request with this Idempotency-Key is still in progress.")
    return earlier


def _merge_lines(lines: list[dict[str, Any]]) -> list[tuple[int, int | None, int]]:
    merged: dict[tuple[int, int | None], int] = {}
    for line in lines:
        key = (line["product_id"], line.get("variant_id"))
        merged[key] = merged.get(key, 0) + line["quantity"]
    # Sorted: the lock order every stock change follows, so checkouts cannot deadlock.
    return sorted(((p, v, q) for (p, v), q in merged.items()), key=lambda t: (t[0], t[1] or 0))


def _resolve_lines(
    lines: list[tuple[int, int | None, int]],
) -> list[tuple[Product, ProductVariant | None, int]]:
    product_ids = {p for p, _, _ in lines}
    products = {
        p.id: p
        for p in db.session.scalars(
            select(Product)
            .where(Product.id.in_(product_ids), Product.is_active.is_(True))
            .options(raiseload(Product.category))  # not needed to sell
        )
    }
    resolved, errors = [], {}
    for index, (product_id, variant_id, quantity) in enumerate(lines):
        product = products.get(product_id)
        variant = None
        if product is None:
            errors[str(index)] = {"product_id": [f"No product {product_id} for sale."]}
        elif variant_id is None and product.variants:
            errors[str(index)] = {"variant_id": ["Required: the product sells by variant."]}
        elif variant_id is not None:
            variant = next(
                (v for v in product.variants if v.id == variant_id and v.is_active), None
            )
            if variant is None:
                errors[str(index)] = {"variant_id": [f"No variant {variant_id} for sale."]}
        if product is not None and str(index) not in errors:
            resolved.append((product, variant, quantity))
    if errors:
        raise Unprocessable("Some lines cannot be ordered.", errors={"items": errors})
    return resolved


def _shipping_address(user: User, data: dict[str, Any]) -> dict[str, Any]:
    if "address_id" in data:
        address = _own_address(user, data["address_id"])
        return {name: getattr(address, name) for name in ADDRESS_FIELDS}
    return dict(data["shipping_address"])


def _totals(subtotal: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    config = current_app.config
    shipping = (
        Decimal("0.00")
        if subtotal >= config["FREE_SHIPPING_THRESHOLD"]
        else config["SHIPPING_FLAT_RATE"]
    )
    tax = (subtotal * config["TAX_RATE"]).quantize(CENT, rounding=ROUND_HALF_UP)
    return shipping.quantize(CENT), tax, (subtotal + shipping + tax).quantize(CENT)


def place_order(
    user: User,
    data: dict[str, Any],
    *,
    idempotency_key: str | None,
    render: Callable[[Order], str],
) -> tuple[int, str]:
    """Checkout in one unit of work; returns (order id, response body).

    Stock for every line is taken through the one stock path, all or nothing; a repeat of an
    Idempotency-Key with the same body returns the first answer and creates nothing.
    """
    with unit_of_work():
        claim = None
        if idempotency_key is not None:
            earlier = _claim_idempotency_key(user, idempotency_key, _fingerprint(data))
            if earlier is not None:
                assert earlier.order_id is not None and earlier.response_body is not None
                return earlier.order_id, earlier.response_body
            claim = idempotency_key
        from_cart = "items" not in data
        requested = (
            data["items"]
            if not from_cart
            else [
                {"product_id": c.product_id, "variant_id": c.variant_id, "quantity": c.quantity}
                for c in db.session.scalars(select(CartItem).where(CartItem.user_id == user.id))
            ]
        )
        if not requested:
            raise Unprocessable("The cart is empty.", errors={"items": ["Nothing to order."]})
        lines = _resolve_lines(_merge_lines(requested))
        order = _create_order(user, data, lines)
        if from_cart:
            db.session.execute(delete(CartItem).where(CartItem.user_id == user.id))
        record(
            "order.created",
            actor=user,
            target_type="order",
            target_id=order.id,
            changes={"number": order.number, "total": str(order.total)},
        )
        mail.queue_email(user.email, "order_created", user=user, order=order)
        body = render(order)
        if claim is not None:
            db.session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.user_id == user.id, IdempotencyKey.key == claim)
                .values(response_status=201, response_body=body, order_id=order.id)
            )
        db.session.flush()
        # Last, so that the product rows stay locked only from here to the commit.
        _take_stock(user, order)
    return order.id, body


def _create_order(
    user: User, data: dict[str, Any], lines: list[tuple[Product, ProductVariant | None, int]]
) -> Order:
    items = []
    for product, variant, quantity in lines:
        price = variant.price if variant else product.price
        items.append(
            OrderItem(
                product_id=product.id,
                variant_id=variant.id if variant else None,
                sku=variant.sku if variant else product.sku,
                name=f"{product.name} ({variant.name})" if variant else product.name,
                unit_price=price,
                quantity=quantity,
                line_total=price * quantity,
            )
        )
    subtotal = sum((i.line_total for i in items), Decimal("0.00"))
    shipping, tax, total = _totals(subtotal)
    order = Order(
        user_id=user.id,
        status=OrderStatus.PENDING,
        payment_status=PaymentStatus.UNPAID,
        subtotal=subtotal,
        shipping_cost=shipping,
        tax=tax,
        total=total,
        currency=current_app.config["CURRENCY"],
        shipping_address=_shipping_address(user, data),
        notes=data.get("notes", ""),
        items=items,
        status_history=[OrderStatusChange(to_status=OrderStatus.PENDING, changed_by=user.id)],
    )
    db.session.add(order)
    db.session.flush()
    return order


def _take_stock(user: User, order: Order) -> None:
    short = {}
    for index, item in enumerate(order.items):
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
            short[str(index)] = {"quantity": [f"{item.sku}: {error.detail}"]}
    if short:
        raise Conflict("Not enough stock for some lines.", errors={"items": short})


# --- reading --------------------------------------------------------------------------------


def get_order(user: User, order_id: int, *, for_update: bool = False) -> Order:
    """An order its owner, staff or an admin may see; anyone else's is a 404."""
    order = db.session.get(
        Order, order_id, with_for_update=for_update, populate_existing=for_update
    )
    if order is None or (order.user_id != user.id and not _is_staff(user)):
        raise NotFound(f"Order {order_id} does not exist.")
    return order


def list_orders(
    user: User,
    *,
    page: int,
    page_size: int,
    status: str | None = None,
    user_id: int | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> Page:
    stmt = select(Order).order_by(Order.created_at.desc(), Order.id.desc())
    if not _is_staff(user):
        stmt = stmt.where(Order.user_id == user.id)
    elif user_id is not None:
        stmt = stmt.where(Order.user_id == user_id)
    if status is not None:
        stmt = stmt.where(Order.status == status)
    if created_after is not None:
        stmt = stmt.where(Order.created_at >= created_after)
    if created_before is not None:
        stmt = stmt.where(Order.created_at <= created_before)
    return paginate(stmt, page, page_size)


# --- status machine -------------------------------------------------------------------------


def transition(
    actor: User | None,
    order: Order,
    to_status: OrderStatus,
    *,
    note: str | None = None,
    tracking_number: str | None = None,
) -> None:
    from_status = OrderStatus(order.status)
    if to_status not in TRANSITIONS[from_status]:
        raise Conflict(f"An order cannot go from {from_status} to {to_status}.")
    if to_status is OrderStatus.SHIPPED and not (tracking_number or order.tracking_number):
        raise Unprocessable(
            "Shipping needs a tracking number.", errors={"tracking_number": ["Required to ship."]}
        )
    if to_status is OrderStatus.CANCELLED:
        _restore_stock(actor, order)
    if to_status is OrderStatus.REFUNDED:
        order.payment_status = PaymentStatus.REFUNDED
    if tracking_number:
        order.tracking_number = tracking_number
    order.status = to_status
    mark_dirty(order)
    invalidate(REPORTS)
    order.status_history.append(
        OrderStatusChange(
            from_status=from_status,
            to_status=to_status,
            changed_by=actor.id if actor else None,
            note=note,
        )
    )
    action = "order.cancelled" if to_status is OrderStatus.CANCELLED else "order.status_changed"
    record(
        action,
        actor=actor,
        target_type="order",
        target_id=order.id,
        changes={"status": {"before": from_status.value, "after": to_status.value}, "note": note},
    )
    customer = db.session.get(User, order.user_id)
    if customer is not None:
        mail.queue_email(customer.email, "order_status", user=customer, order=order, note=note)


def _restore_stock(actor: User | None, order: Order) -> None:
    for item in sorted(order.items, key=lambda i: (i.product_id, i.variant_id or 0)):
        change_stock(
            product_id=item.product_id,
            variant_id=item.variant_id,
            delta=item.quantity,
            type=MovementType.CANCEL,
            actor=actor,
            reference=order.number,
        )


def change_status(actor: User, order_id: int, data: dict[str, Any]) -> Order:
    with unit_of_work():
        order = get_order(actor, order_id, for_update=True)
        transition(
            actor,
            order,
            OrderStatus(data["status"]),
            note=data.get("note"),
            tracking_number=data.get("tracking_number"),
        )
    return order


def cancel_order(actor: User, order_id: int, note: str | None = None) -> Order:
    """Owners cancel while pending; staff and admins until the order ships."""
    with unit_of_work():
        order = get_order(actor, order_id, for_update=True)
        if not _is_staff(actor) and order.status != OrderStatus.PENDING:
            raise Conflict("Only a pending order can be cancelled by its owner.")
        transition(actor, order, OrderStatus.CANCELLED, note=note or "cancelled")
    return order


# --- payments -------------------------------------------------------------------------------


def _apply_payment(actor: User | None, order: Order, payment: Payment) -> None:
    order.amount_paid = (order.amount_paid or Decimal("0.00")) + payment.amount
    order.payment_status = (
        PaymentStatus.PAID if order.amount_paid >= order.total else PaymentStatus.PARTIALLY_PAID
    )
    record(
        "payment.recorded",
        actor=actor,
        target_type="order",
        target_id=order.id,
        changes={
            "amount": str(payment.amount),
            "method": payment.method,
            "reference": payment.reference,
            "amount_paid": str(order.amount_paid),
        },
    )
    if order.payment_status == PaymentStatus.PAID and order.status == OrderStatus.PENDING:
        transition(actor, order, OrderStatus.PAID, note="paid in full")


def record_payment(actor: User, order_id: int, data: dict[str, Any]) -> Payment:
    with unit_of_work():
        order = get_order(actor, order_id, for_update=True)
        if order.status in (OrderStatus.CANCELLED, OrderStatus.REFUNDED):
            raise Conflict(f"The order is {order.status}.")
        due = order.total - (order.amount_paid or Decimal("0.00"))
        if data["amount"] > due:
            raise Conflict(
                f"The payment exceeds the {due} due.", errors={"amount": [f"At most {due}."]}
            )
        payment = Payment(
            order_id=order.id,
            amount=data["amount"],
            method=data["method"],
            status="succeeded",
            reference=data.get("reference"),
            recorded_by=actor.id,
        )
        db.session.add(payment)
        _apply_payment(actor, order, payment)
        db.session.flush()
    return payment


def verify_webhook_signature(raw_body: bytes, header: str | None) -> None:
    secret = current_app.config["PAYMENT_WEBHOOK_SECRET"]
    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    if not secret or not header or not hmac.compare_digest(header.strip(), expected):
        raise Unauthorized("The webhook signature is missing or wrong.")


def _order_by_number(number: str) -> Order | None:
    match = re.fullmatch(r"ORD-(\d{8})-(\d+)", number)
    if not match:
        return None
    order = db.session.get(Order, int(match.group(2)), with_for_update=True)
    return order if order is not None and order.number == number else None


def handle_payment_event(data: dict[str, Any]) -> dict[str, Any]:
    """A provider's signed event; the same event_id twice (or at once) counts once."""
    with unit_of_work():
        order = _order_by_number(data["order_number"])
        if order is None:
            raise NotFound(f"No order {data['order_number']}.")
        if data.get("currency") and data["currency"] != order.currency:
            raise Conflict(f"The order is in {order.currency}.")
        payment_id = db.session.scalar(
            insert_ignoring_conflicts(Payment)
            .values(
                order_id=order.id,
                amount=data["amount"],
                method=PaymentMethod.PROVIDER,
                status=data["status"],
                reference=data.get("reference"),
                provider_event_id=data["event_id"],
            )
            .returning(Payment.id)
        )
        if payment_id is None:
            return {"result": "duplicate", "payment_id": None}
        if data["status"] == "succeeded":
            due = order.total - (order.amount_paid or Decimal("0.00"))
            if data["amount"] != due:
                raise Conflict(f"The amount does not match the {due} due.")
            payment = db.session.get(Payment, payment_id)
            assert payment is not None
            _apply_payment(None, order, payment)
    return {"result": "recorded", "payment_id": payment_id}


def has_bought(user: User, product_id: int) -> bool:
    """Whether `user` has a non-cancelled order containing the product."""
    return bool(
        db.session.scalar(
            select(OrderItem.id)
            .join(Order, Order.id == OrderItem.order_id)
            .where(
                Order.user_id == user.id,
                OrderItem.product_id == product_id,
                Order.status != OrderStatus.CANCELLED,
            )
            .limit(1)
        )
    )
