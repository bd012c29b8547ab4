"""The cart: lines at current prices, checked against stock as they are added, and the
coupon it holds. A cart is a signed-in user's (made on first use) or a guest's (POST /carts,
known by its token); every function takes the cart, resolved once per request, so both kinds
share every line of code. Merging a guest's cart into a user's, and purging idle guest carts."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, delete, func, select, update

from shop import bus
from shop.auth.models import User
from shop.db import db, get_or_404, insert_ignoring_conflicts, unit_of_work, utcnow
from shop.errors import Conflict, NotFound, ShopError
from shop.merchandising import coupons
from shop.merchandising.coupons import Applied
from shop.merchandising.models import Coupon
from shop.orders.events import CartItemAdded
from shop.orders.models import Cart, CartCoupon, CartItem
from shop.orders.schemas import MAX_CART_LINES, MAX_LINE_QUANTITY, CartLineCreate
from shop.products.models import Product, ProductVariant
from shop.products.sellable import SELLABLE_COLUMNS, Sellable, sellable

# --- which cart --------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_guest_cart() -> tuple[Cart, str]:
    """A new guest cart and its token (stored only as its SHA-256: shown once)."""
    token = secrets.token_urlsafe(32)
    with unit_of_work() as session:
        cart = Cart(token_hash=token_hash(token))
        session.add(cart)
    return cart, token


def guest_cart(token: str) -> Cart:
    """The guest cart of `token`: unknown, or idle past CART_IDLE_DAYS (not purged yet), is a
    404. Its last_used_at is written at most every CART_TOUCH_SECONDS, not on every read."""
    config = current_app.config
    now = utcnow()
    cart = db.session.scalar(
        select(Cart).where(
            Cart.token_hash == token_hash(token),
            Cart.last_used_at > now - timedelta(days=config["CART_IDLE_DAYS"]),
        )
    )
    if cart is None:
        raise NotFound("No cart has this X-Cart-Token (or it has expired).")
    if cart.last_used_at < now - timedelta(seconds=config["CART_TOUCH_SECONDS"]):
        with unit_of_work():
            db.session.execute(update(Cart).where(Cart.id == cart.id).values(last_used_at=now))
        cart.last_used_at = now
    return cart


def user_cart(user: User, *, create: bool = False) -> Cart:
    """The user's cart; made now if `create`, else one not yet saved (no lines, no coupon)
    when the user has none: reading a cart writes nothing."""
    cart = db.session.scalar(select(Cart).where(Cart.user_id == user.id))
    if cart is not None or not create:
        return cart or Cart(user_id=user.id)
    with unit_of_work():
        # Two first uses at once make one cart: the second INSERT waits, skips, and reads it.
        db.session.execute(insert_ignoring_conflicts(Cart).values(user_id=user.id))
        made = db.session.scalar(select(Cart).where(Cart.user_id == user.id))
    assert made is not None
    return made


def _saved(cart: Cart) -> bool:
    return cart.id is not None


# --- the cart's content -----------------------------------------------------------------


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


def _cart_rows(cart: Cart) -> list[tuple[CartItem, Sellable]]:
    if not _saved(cart):
        return []
    rows = db.session.execute(
        select(CartItem, *SELLABLE_COLUMNS)
        .join(Product, Product.id == CartItem.product_id)
        .outerjoin(ProductVariant, ProductVariant.id == CartItem.variant_id)
        .where(CartItem.cart_id == cart.id)
        .order_by(CartItem.id)
    ).all()
    return [(row.CartItem, Sellable.of(row)) for row in rows]


def cart_coupon(cart: Cart, *, checkout: bool = False) -> Coupon | None:
    if not _saved(cart):
        return None
    return db.session.scalar(
        coupons.to_apply(
            select(Coupon)
            .join(CartCoupon, CartCoupon.coupon_id == Coupon.id)
            .where(CartCoupon.cart_id == cart.id),
            checkout=checkout,
        )
    )


def _apply(coupon: Coupon, cart: Cart, rows: list[tuple[CartItem, Sellable]]) -> Applied:
    lines = [(item, line.quantity) for line, item in rows]
    # A guest has no account for a limit per customer to count against: it does not apply.
    return coupons.apply(coupon, lines, cart.user_id)


def get_cart(cart: Cart) -> dict[str, Any]:
    """The lines at current prices; with a coupon, what it takes off now, or why it no
    longer applies (`coupon_error`: the cart keeps the code, checkout would refuse it)."""
    rows = _cart_rows(cart)
    coupon = cart_coupon(cart)
    applied: Applied | None = None
    error = None
    if coupon is not None:
        try:
            applied = _apply(coupon, cart, rows)
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


def set_coupon(cart: Cart, code: str) -> dict[str, Any]:
    """Put a coupon on the cart: 422 saying why it does not apply to it (409 used up)."""
    with unit_of_work() as session:
        coupon = coupons.find(code)
        _apply(coupon, cart, _cart_rows(cart))
        # Replaced, not updated: two PUTs at once leave one coupon, never an error.
        session.execute(delete(CartCoupon).where(CartCoupon.cart_id == cart.id))
        session.execute(
            insert_ignoring_conflicts(CartCoupon).values(cart_id=cart.id, coupon_id=coupon.id)
        )
    return get_cart(cart)


def remove_coupon(cart: Cart) -> None:
    if _saved(cart):
        with unit_of_work():
            db.session.execute(delete(CartCoupon).where(CartCoupon.cart_id == cart.id))


def add_to_cart(cart: Cart, data: CartLineCreate) -> dict[str, Any]:
    """Add to the cart's line of this item, or start it (at most MAX_CART_LINES lines: the
    cart's row is locked while a new line is counted). Two first adds of one line at once
    both count: the second INSERT waits on the line's unique index for the first's commit,
    skips, and adds to the line the first made."""
    with unit_of_work():
        item = sellable(data["product_id"], data.get("variant_id"))
        bus.publish(CartItemAdded(cart.id, cart.user_id, item.product_id, item.variant_id,
                                  data["quantity"]))  # fmt: skip
        line = _locked_line(cart, item)
        if line is None:
            _check_addable(item, 0, data["quantity"])
            _check_room(cart, 1)
            line = db.session.scalar(
                insert_ignoring_conflicts(CartItem)
                .values(
                    cart_id=cart.id,
                    product_id=item.product_id,
                    variant_id=item.variant_id,
                    quantity=data["quantity"],
                )
                .returning(CartItem)
            )
            if line is not None:
                return _line(line, item)
            line = _locked_line(cart, item)  # a concurrent first add made it: add to it
            assert line is not None
        _check_addable(item, line.quantity, data["quantity"])
        line.quantity += data["quantity"]
        db.session.flush()
    return _line(line, item)


def _check_room(cart: Cart, new_lines: int) -> None:
    """Room for `new_lines` more lines, counted under the cart row's lock."""
    db.session.execute(select(Cart.id).where(Cart.id == cart.id).with_for_update())
    held = db.session.scalar(
        select(func.count()).select_from(CartItem).where(CartItem.cart_id == cart.id)
    )
    if (held or 0) + new_lines > MAX_CART_LINES:
        raise Conflict(
            f"A cart holds at most {MAX_CART_LINES} lines.",
            errors={"items": [f"the cart has {held} lines already"]},
        )


def _locked_line(cart: Cart, item: Sellable) -> CartItem | None:
    return db.session.scalar(
        select(CartItem)
        .where(
            CartItem.cart_id == cart.id,
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


def _own_line(cart: Cart, line_id: int) -> CartItem:
    return get_or_404(
        CartItem, line_id, visible=lambda line: _saved(cart) and line.cart_id == cart.id
    )


def update_cart_item(cart: Cart, line_id: int, quantity: int) -> dict[str, Any]:
    with unit_of_work():
        line = _own_line(cart, line_id)
        item = sellable(line.product_id, line.variant_id)
        _check_available(item, quantity)
        line.quantity = quantity
    return _line(line, item)


def remove_cart_item(cart: Cart, line_id: int) -> None:
    with unit_of_work():
        db.session.delete(_own_line(cart, line_id))


def empty(cart: Cart) -> None:
    """Its lines and coupon deleted, in the caller's unit of work (checkout's)."""
    db.session.execute(delete(CartItem).where(CartItem.cart_id == cart.id))
    db.session.execute(delete(CartCoupon).where(CartCoupon.cart_id == cart.id))


def clear_cart(cart: Cart) -> None:
    """Empty it: the lines and the coupon."""
    if _saved(cart):
        with unit_of_work():
            empty(cart)


# --- merging at sign-in, purging ---------------------------------------------------------


def merge_guest_cart(user: User, token: str) -> dict[str, Any]:
    """Move the guest cart of `token` into the user's: a line of the same product and variant
    adds up (checked against stock and the per-line cap; 409 naming the guest lines that
    cannot, nothing moved), others join it (within MAX_CART_LINES); its coupon moves if the
    user's cart has none; the guest cart is deleted. Unknown token: 404."""
    mine = user_cart(user, create=True)
    with unit_of_work() as session:
        guest = session.scalar(
            select(Cart)
            .where(
                Cart.token_hash == token_hash(token),
                Cart.user_id.is_(None),
                Cart.last_used_at > utcnow() - timedelta(days=current_app.config["CART_IDLE_DAYS"]),
            )
            .with_for_update()
        )
        if guest is None:
            raise NotFound("No cart has this token.")
        # The user's cart, then its lines, locked before they are read: another merge into it
        # waits for this one, and a concurrent add to a line waits and adds to the sum.
        session.execute(select(Cart.id).where(Cart.id == mine.id).with_for_update())
        session.scalars(select(CartItem.id).where(CartItem.cart_id == mine.id).with_for_update())
        held = {(line.product_id, line.variant_id): line for line, _ in _cart_rows(mine)}
        refused: dict[str, list[str]] = {}
        joining = 0
        moves: list[tuple[CartItem, Sellable, CartItem | None]] = []
        for line, item in _cart_rows(guest):
            into = held.get((line.product_id, line.variant_id))
            total = line.quantity + (into.quantity if into else 0)
            if total > MAX_LINE_QUANTITY:
                refused[str(line.id)] = [f"{item.sku}: at most {MAX_LINE_QUANTITY} per line"]
            elif total > item.stock:
                refused[str(line.id)] = [f"{item.sku}: only {item.stock} in stock"]
            joining += into is None
            moves.append((line, item, into))
        if refused:
            raise Conflict("Some lines cannot be merged.", errors={"items": refused})
        if joining:
            _check_room(mine, joining)
        for line, _, into in moves:
            if into is None:
                line.cart_id = mine.id
            else:
                into.quantity += line.quantity
                session.delete(line)
        session.flush()
        if session.scalar(select(CartCoupon.cart_id).where(CartCoupon.cart_id == mine.id)) is None:
            session.execute(
                update(CartCoupon).where(CartCoupon.cart_id == guest.id).values(cart_id=mine.id)
            )
        session.delete(guest)
    return get_cart(mine)


def purge_idle_carts() -> dict[str, int]:
    """The `purge-carts` job: guest carts idle CART_IDLE_DAYS go, with their lines and coupon
    (a signed-in user's cart stays as long as the account)."""
    idle = utcnow() - timedelta(days=current_app.config["CART_IDLE_DAYS"])
    with unit_of_work() as session:
        result = session.execute(
            delete(Cart).where(Cart.user_id.is_(None), Cart.last_used_at < idle)
        )
    return {"deleted": cast(CursorResult[Any], result).rowcount}
