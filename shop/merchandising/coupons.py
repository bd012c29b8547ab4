"""Coupons: what admins set up, what a code takes off a set of lines (and why it does not
apply), and the redemption count that keeps a coupon's limit under any concurrency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.orm import lazyload, undefer

from shop.audit.models import Action, Target
from shop.audit.services import changes_recorded, record, snapshot
from shop.auth.models import User
from shop.db import Page, db, get_or_404, is_postgres, paginate, table_of, unit_of_work, utcnow
from shop.errors import Conflict, Unprocessable
from shop.merchandising.models import Coupon, CouponKind, coupon_redemptions
from shop.products.models import category_and_descendants
from shop.products.sellable import Sellable
from shop.schemas import CENT

FIELDS = (
    "code",
    "kind",
    "value",
    "min_subtotal",
    "starts_at",
    "ends_at",
    "max_redemptions",
    "max_per_customer",
    "is_active",
    "product_ids",
    "category_ids",
)


class CouponRefused(Unprocessable):
    """A code that does not apply: its detail says why, for the customer."""


# --- admin ----------------------------------------------------------------------------------


def list_coupons(page: int, page_size: int, code: str | None = None) -> Page:
    stmt = select(Coupon).options(undefer(Coupon.held)).order_by(Coupon.id.desc())
    if code is not None:
        stmt = stmt.where(func.lower(Coupon.code) == code.lower())
    return paginate(stmt, page, page_size)


def get_coupon(coupon_id: int) -> Coupon:
    return get_or_404(Coupon, coupon_id)


def _check(coupon: Coupon) -> None:
    """The rules that join fields (checked after a change too: PATCH gives one side)."""
    if coupon.kind == CouponKind.PERCENT and not Decimal(1) <= coupon.value <= Decimal(100):
        raise Unprocessable(
            "A percent coupon takes 1 to 100 off.", errors={"value": ["From 1 to 100."]}
        )
    if coupon.kind == CouponKind.FIXED and coupon.value < CENT:
        raise Unprocessable(
            "A fixed coupon takes an amount off.", errors={"value": ["At least 0.01."]}
        )
    if coupon.max_redemptions is not None and coupon.max_redemptions < coupon.redemptions:
        raise Unprocessable(
            f"{coupon.redemptions} orders hold the coupon already.",
            errors={"max_redemptions": [f"At least {coupon.redemptions}."]},
        )
    if coupon.starts_at and coupon.ends_at and coupon.ends_at <= coupon.starts_at:
        raise Unprocessable(
            "A coupon ends after it starts.", errors={"ends_at": ["Must be after starts_at."]}
        )


def _code_taken(code: str, coupon_id: int | None = None) -> None:
    taken = db.session.scalar(
        select(Coupon.id).where(func.lower(Coupon.code) == code.lower(), Coupon.id != coupon_id)
    )
    if taken is not None:
        raise Conflict(f"The code {code} is taken.", errors={"code": ["Taken (any case)."]})


def create_coupon(actor: User, data: dict[str, Any]) -> Coupon:
    with unit_of_work() as session:
        _code_taken(data["code"])
        coupon = Coupon(redemptions=0)
        coupon.scope_to(data)
        for name, value in data.items():
            setattr(coupon, name, value)
        _check(coupon)
        session.add(coupon)
        session.flush()  # a concurrent equal code fails here on the unique index: 409
        record(
            Action.COUPON_CREATED,
            actor=actor,
            target_type=Target.COUPON,
            target_id=coupon.id,
            changes=snapshot(coupon, FIELDS),
        )
    return coupon


def update_coupon(actor: User, coupon_id: int, data: dict[str, Any]) -> Coupon:
    with unit_of_work():
        coupon = get_or_404(Coupon, coupon_id, for_update=True)
        if "code" in data:
            _code_taken(data["code"], coupon.id)
        with changes_recorded(
            Action.COUPON_UPDATED,
            actor=actor,
            target_type=Target.COUPON,
            target=coupon,
            fields=FIELDS,
        ):
            coupon.scope_to(data)
            for name, value in data.items():
                setattr(coupon, name, value)
            if "max_redemptions" in data:
                # Locked FOR UPDATE above: every checkout holding the coupon has committed,
                # and new ones wait, so the count is exact.
                coupon.redemptions = coupon.held if coupon.max_redemptions else 0
            _check(coupon)
    return coupon


def delete_coupon(actor: User, coupon_id: int) -> None:
    """Orders that used it keep its code and their discount."""
    with unit_of_work() as session:
        coupon = get_or_404(Coupon, coupon_id, for_update=True)
        record(
            Action.COUPON_DELETED,
            actor=actor,
            target_type=Target.COUPON,
            target_id=coupon_id,
            changes={"code": coupon.code, "redemptions": coupon.held},
        )
        session.delete(coupon)


# --- pricing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """What a coupon takes off each line (in the lines' order), and whether it frees shipping."""

    coupon: Coupon
    line_discounts: list[Decimal]
    free_shipping: bool

    @property
    def discount(self) -> Decimal:
        return sum(self.line_discounts, Decimal("0.00"))


def to_apply(stmt: Select[tuple[Coupon]], *, checkout: bool = False) -> Select[tuple[Coupon]]:
    """A coupon read to apply: what it is scoped to is loaded only if it is (see `scoped`).
    At `checkout` its row is share-locked (FOR KEY SHARE) to the commit: checkouts never wait
    on each other, an admin changing its limit waits for them (see update_coupon)."""
    stmt = stmt.options(lazyload(Coupon.products), lazyload(Coupon.categories))
    return stmt.with_for_update(read=True, key_share=True, of=Coupon) if checkout else stmt


def find(code: str, *, checkout: bool = False) -> Coupon:
    coupon = db.session.scalar(
        to_apply(select(Coupon).where(func.lower(Coupon.code) == code.lower()), checkout=checkout)
    )
    if coupon is None:
        raise CouponRefused(f"There is no coupon {code}.", errors={"coupon_code": ["Unknown."]})
    return coupon


def _refuse(reason: str) -> CouponRefused:
    return CouponRefused(reason, errors={"coupon_code": [reason]})


def apply(
    coupon: Coupon, lines: Sequence[tuple[Sellable, int]], user_id: int | None = None
) -> Applied:
    """What `coupon` takes off these lines now, or CouponRefused saying why it does not apply.

    Percent: each line it applies to, rounded half up. Fixed: shared over those lines in
    proportion to their totals (half up, the last cent on the biggest line), never more than
    they come to. A coupon used up, or by customer `user_id`, is a 409 (Conflict); a
    checkout leaves the customer's share to its redemption, which counts it under a lock."""
    now = utcnow()
    if not coupon.is_active:
        raise _refuse(f"The coupon {coupon.code} is not active.")
    if coupon.starts_at is not None and now < coupon.starts_at:
        raise _refuse(f"The coupon {coupon.code} starts at {coupon.starts_at.isoformat()}.")
    if coupon.ends_at is not None and now >= coupon.ends_at:
        raise _refuse(f"The coupon {coupon.code} ended at {coupon.ends_at.isoformat()}.")
    if coupon.max_redemptions is not None and coupon.redemptions >= coupon.max_redemptions:
        raise _used_up(coupon)  # a 409, as a checkout that loses the race for the last one
    if user_id is not None:
        _within_customer_limit(coupon, user_id, placed=0)
    if not lines:  # an empty cart may hold a code: what it applies to is checked as it fills
        return Applied(coupon, [], free_shipping=coupon.kind == CouponKind.FREE_SHIPPING)
    totals = [item.price * quantity for item, quantity in lines]
    subtotal = sum(totals, Decimal("0.00"))
    if subtotal < coupon.min_subtotal:
        raise _refuse(
            f"The coupon {coupon.code} needs a subtotal of at least {coupon.min_subtotal}"
            f" (this one is {subtotal})."
        )
    eligible = _eligible(coupon, [item for item, _ in lines])
    if not any(eligible):
        raise _refuse(f"The coupon {coupon.code} applies to none of these items.")
    zero = Decimal("0.00")
    if coupon.kind == CouponKind.FREE_SHIPPING:
        return Applied(coupon, [zero] * len(lines), free_shipping=True)
    if coupon.kind == CouponKind.PERCENT:
        rate = coupon.value / 100
        off = [_cents(t * rate) if e else zero for t, e in zip(totals, eligible, strict=True)]
        return Applied(coupon, off, free_shipping=False)
    return Applied(coupon, _share(coupon.value, totals, eligible), free_shipping=False)


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _share(amount: Decimal, totals: list[Decimal], eligible: list[bool]) -> list[Decimal]:
    base = sum((t for t, e in zip(totals, eligible, strict=True) if e), Decimal("0.00"))
    amount = min(amount, base)
    zero = Decimal("0.00")
    pairs = zip(totals, eligible, strict=True)
    off = [_cents(amount * total / base) if e else zero for total, e in pairs]
    biggest = max((i for i, e in enumerate(eligible) if e), key=lambda i: totals[i])
    off[biggest] += amount - sum(off, Decimal("0.00"))
    return off


def _eligible(coupon: Coupon, items: list[Sellable]) -> list[bool]:
    if not coupon.scoped:
        return [True] * len(items)
    products = set(coupon.product_ids)
    categories: set[int] = set()
    if coupon.categories:
        categories = set(db.session.scalars(category_and_descendants(*coupon.category_ids)))
    return [i.product_id in products or i.category_id in categories for i in items]


# --- redemptions ----------------------------------------------------------------------------

_coupons = table_of(Coupon)


def redeem(coupon: Coupon, order_id: int, user_id: int | None) -> None:
    """The order's redemption: its row, then the limits. A total limit is a conditional
    UPDATE of the coupon's counter, so the row stays locked to the commit and concurrent
    checkouts take turns (the last redemptions are decided by the database, never by what a
    request read earlier); a limit per customer is counted under a lock of that customer's
    own (coupon, customer) pair. A coupon with neither locks nothing: its checkouts do not
    queue behind each other."""
    db.session.execute(
        insert(coupon_redemptions).values(order_id=order_id, coupon_id=coupon.id, user_id=user_id)
    )
    if coupon.max_redemptions is not None:
        counted = db.session.execute(
            update(_coupons)
            .where(_coupons.c.id == coupon.id, _coupons.c.redemptions < _coupons.c.max_redemptions)
            .values(redemptions=_coupons.c.redemptions + 1)
            .returning(_coupons.c.redemptions)
        ).scalar()
        if counted is None:
            raise _used_up(coupon)
    if coupon.max_per_customer is not None and user_id is not None:
        if is_postgres():  # SQLite writes one transaction at a time anyway
            db.session.execute(select(func.pg_advisory_xact_lock(coupon.id, user_id)))
        _within_customer_limit(coupon, user_id, placed=1)


def _within_customer_limit(coupon: Coupon, user_id: int, *, placed: int) -> None:
    """`placed`: this unit of work's own redemption, counted too (0 or 1)."""
    if coupon.max_per_customer is None:
        return
    used = db.session.scalar(
        select(func.count())
        .select_from(coupon_redemptions)
        .where(coupon_redemptions.c.coupon_id == coupon.id, coupon_redemptions.c.user_id == user_id)
    )
    if (used or 0) - placed >= coupon.max_per_customer:
        times = "once" if coupon.max_per_customer == 1 else f"{coupon.max_per_customer} times"
        raise Conflict(
            f"The coupon {coupon.code} is for {times} per customer, and you have used it.",
            errors={"coupon_code": ["Used up for this customer."]},
        )


def _used_up(coupon: Coupon) -> Conflict:
    return Conflict(
        f"The coupon {coupon.code} has been used up.",
        errors={"coupon_code": ["No redemptions left."]},
    )


def give_back(order_id: int) -> None:
    """A cancelled order's redemption returns (the coupon may be gone: nothing to do)."""
    coupon_id = db.session.scalar(
        delete(coupon_redemptions)
        .where(coupon_redemptions.c.order_id == order_id)
        .returning(coupon_redemptions.c.coupon_id)
    )
    if coupon_id is not None:
        db.session.execute(
            update(_coupons)
            .where(
                _coupons.c.id == coupon_id,
                _coupons.c.max_redemptions.is_not(None),
                _coupons.c.redemptions > 0,
            )
            .values(redemptions=_coupons.c.redemptions - 1)
        )
