"""The cart: lines at current prices, checked against stock as they are added, and the
coupon it holds."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select

from shop.auth.models import User
from shop.db import db, get_or_404, insert_ignoring_conflicts, unit_of_work
from shop.errors import Conflict, ShopError
from shop.merchandising import coupons
from shop.merchandising.coupons import Applied
from shop.merchandising.models import Coupon
from shop.orders.models import CartCoupon, CartItem
from shop.orders.schemas import MAX_LINE_QUANTITY, CartLineCreate
from shop.products.catalog import SELLABLE_COLUMNS, Sellable, sellable
from shop.products.models import Product, ProductVariant


def _check_available(item: Sellable, quantity: int) -> None:
    if quantity > item.stock:
        raise Conflict(
            f"Only {item.stock} in stock.", errors={"quantity": [f"{item.stock} available"]}
        )


def _line(line: CartItem, item: Sellable, discount: Decimal = Decimal("0.00")) -> dict[str, Any]:
    return {
        "id": line.id,
        "product_id": line.product_id,
        "variant_id": line.variant_id,
        "sku": item.sku,
        "name": item.name,
        "unit_price": item.price,
        "list_price": item.list_price,
        "quantity": line.quantity,
        "discount": discount,
        "line_total": item.price * line.quantity - discount,
    }


def _cart_rows(user: User) -> list[tuple[CartItem, Sellable]]:
    rows = db.session.execute(
        select(CartItem, *SELLABLE_COLUMNS)
        .join(Product, Product.id == CartItem.product_id)
        .outerjoin(ProductVariant, ProductVariant.id == CartItem.variant_id)
        .where(CartItem.user_id == user.id)
        .order_by(CartItem.id)
    ).all()
    return [(row.CartItem, Sellable.of(row)) for row in rows]


def cart_coupon(user: User, *, checkout: bool = False) -> Coupon | None:
    return db.session.scalar(
        coupons.to_apply(
            select(Coupon)
            .join(CartCoupon, CartCoupon.coupon_id == Coupon.id)
            .where(CartCoupon.user_id == user.id),
            checkout=checkout,
        )
    )


def get_cart(user: User) -> dict[str, Any]:
    """The lines at current prices; with a coupon, what it takes off now, or why it no
    longer applies (`coupon_error`: the cart keeps the code, checkout would refuse it)."""
    rows = _cart_rows(user)
    coupon = cart_coupon(user)
    applied: Applied | None = None
    error = None
    if coupon is not None:
        try:
            applied = coupons.apply(coupon, [(item, line.quantity) for line, item in rows], user.id)
        except ShopError as refused:
            error = refused.detail
    off = applied.line_discounts if applied else [Decimal("0.00")] * len(rows)
    lines = [_line(line, item, d) for (line, item), d in zip(rows, off, strict=True)]
    subtotal = sum((item.price * line.quantity for line, item in rows), Decimal("0.00"))
    discount = applied.discount if applied else Decimal("0.00")
    return {
        "items": lines,
        "subtotal": subtotal,
        "item_count": sum(line["quantity"] for line in lines),
        "coupon_code": coupon.code if coupon else None,
        "coupon_error": error,
        "free_shipping": bool(applied and applied.free_shipping),
        "discount": discount,
        "total": subtotal - discount,
    }


def set_coupon(user: User, code: str) -> dict[str, Any]:
    """Put a coupon on the cart: 422 saying why it does not apply to it (409 used up)."""
    with unit_of_work() as session:
        coupon = coupons.find(code)
        rows = _cart_rows(user)
        coupons.apply(coupon, [(item, line.quantity) for line, item in rows], user.id)
        # Replaced, not updated: two PUTs at once leave one coupon, never an error.
        session.execute(delete(CartCoupon).where(CartCoupon.user_id == user.id))
        session.execute(
            insert_ignoring_conflicts(CartCoupon).values(user_id=user.id, coupon_id=coupon.id)
        )
    return get_cart(user)


def remove_coupon(user: User) -> None:
    with unit_of_work():
        db.session.execute(delete(CartCoupon).where(CartCoupon.user_id == user.id))


def add_to_cart(user: User, data: CartLineCreate) -> dict[str, Any]:
    """Add to the user's line of this item, or start it. Two first adds of one line at once
    both count: the second INSERT waits on the line's unique index for the first's commit,
    skips, and adds to the line the first made."""
    with unit_of_work():
        item = sellable(data["product_id"], data.get("variant_id"))
        line = _locked_line(user, item)
        if line is None:
            _check_addable(item, 0, data["quantity"])
            line = db.session.scalar(
                insert_ignoring_conflicts(CartItem)
                .values(
                    user_id=user.id,
                    product_id=item.product_id,
                    variant_id=item.variant_id,
                    quantity=data["quantity"],
                )
                .returning(CartItem)
            )
            if line is not None:
                return _line(line, item)
            line = _locked_line(user, item)  # a concurrent first add made it: add to it
            assert line is not None
        _check_addable(item, line.quantity, data["quantity"])
        line.quantity += data["quantity"]
        db.session.flush()
    return _line(line, item)


def _locked_line(user: User, item: Sellable) -> CartItem | None:
    return db.session.scalar(
        select(CartItem)
        .where(
            CartItem.user_id == user.id,
            CartItem.product_id == item.product_id,
            func.coalesce(CartItem.variant_id, 0) == (item.variant_id or 0),
        )
        .with_for_update()
    )


def _check_addable(item: Sellable, held: int, added: int) -> None:
    if held + added > MAX_LINE_QUANTITY:
        raise Conflict(
            f"At most {MAX_LINE_QUANTITY} of an item per line.",
            errors={"quantity": [f"the cart holds {held} already"]},
        )
    _check_available(item, held + added)


def _own_line(user: User, line_id: int) -> CartItem:
    return get_or_404(CartItem, line_id, visible=lambda line: line.user_id == user.id)


def update_cart_item(user: User, line_id: int, quantity: int) -> dict[str, Any]:
    with unit_of_work():
        line = _own_line(user, line_id)
        item = sellable(line.product_id, line.variant_id)
        _check_available(item, quantity)
        line.quantity = quantity
    return _line(line, item)


def remove_cart_item(user: User, line_id: int) -> None:
    with unit_of_work():
        db.session.delete(_own_line(user, line_id))


def clear_cart(user: User) -> None:
    """Empty it: the lines and the coupon."""
    with unit_of_work():
        db.session.execute(delete(CartItem).where(CartItem.user_id == user.id))
        db.session.execute(delete(CartCoupon).where(CartCoupon.user_id == user.id))
