"""Shipping methods: admins' CRUD, the list a storefront shows, and the options a checkout
chooses from, read per country from a cached copy (replaced by every write), so checkout
pays no query."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, select

from shop.audit.models import Action, Target
from shop.audit.services import changes_recorded, record, snapshot
from shop.auth.models import User
from shop.caching import cached_value, invalidate
from shop.db import Page, db, get_or_404, paginate, unit_of_work
from shop.errors import NotFound, Unprocessable
from shop.shipping.models import EVERYWHERE, ShippingDestination, ShippingMethod, cost
from shop.shipping.schemas import ShippingMethodCreate, ShippingMethodUpdate

FIELDS = ("name", "carrier", "price", "free_over", "countries", "min_days", "max_days",
          "is_active")  # fmt: skip
SHIPPING_METHODS = "shipping-methods"  # the cache namespace of the list and the options
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Option:
    """An active method shipping to a country, as checkout prices it."""

    id: int
    name: str
    carrier: str
    list_price: Decimal
    free_over: Decimal | None
    min_days: int
    max_days: int

    def price_for(self, goods: Decimal, *, free: bool = False) -> Decimal:
        """What goods coming to `goods` (after discount) pay; nothing when `free` (a coupon)."""
        return ZERO if free else cost(self.list_price, self.free_over, goods)

    def ref(self) -> dict[str, Any]:
        """{id, name, carrier}: how orders name the method they ship by."""
        return {"id": self.id, "name": self.name, "carrier": self.carrier}

    def quote(self, price: Decimal) -> dict[str, Any]:
        """The option as a preview lists it (ShippingOptionSchema), with what the cart pays."""
        return {**asdict(self), "price": price}


def _ships_to(country: str) -> ColumnElement[bool]:
    """The method has a row for `country` or for everywhere (on the country's index)."""
    return ShippingMethod.id.in_(
        select(ShippingDestination.method_id).where(
            ShippingDestination.country.in_((country, EVERYWHERE))
        )
    )


def options_for(country: str) -> list[Option]:
    """The active methods shipping to `country`, cheapest first (list price, then id)."""
    rows = cached_value(SHIPPING_METHODS, f"to:{country}", lambda: _options(country), timeout=3600)
    return [Option(*row) for row in rows]


def _options(country: str) -> list[tuple[Any, ...]]:
    m = ShippingMethod
    rows = db.session.execute(
        select(m.id, m.name, m.carrier, m.price, m.free_over, m.min_days, m.max_days)
        .where(m.is_active.is_(True), _ships_to(country))
        .order_by(m.price, m.id)
    )
    return [tuple(row) for row in rows]


def chosen(options: list[Option], method_id: int, country: str) -> Option:
    """The option `method_id` names, or a 422 when it is not one for `country` (unknown,
    inactive, or shipping elsewhere)."""
    for option in options:
        if option.id == method_id:
            return option
    listed = ", ".join(str(o.id) for o in options) or "none: the flat rate applies"
    message = f"Shipping method {method_id} does not ship to {country} (those that do: {listed})."
    raise Unprocessable(message, errors={"shipping_method_id": [message]})


# --- the list -------------------------------------------------------------------------------


def list_methods(
    *,
    page: int,
    page_size: int,
    country: str | None = None,
    subtotal: Decimal = ZERO,
    include_inactive: bool = False,
) -> Page:
    """Active methods (admins: `include_inactive`), those shipping to `country` if given,
    cheapest first; each `quoted` at what `subtotal` pays. Three statements at any size: the
    count, the page, its countries."""
    stmt = select(ShippingMethod).order_by(ShippingMethod.price, ShippingMethod.id)
    if not include_inactive:
        stmt = stmt.where(ShippingMethod.is_active.is_(True))
    if country is not None:
        stmt = stmt.where(_ships_to(country))
    found = paginate(stmt, page, page_size)
    for method in found.items:
        method.quoted = method.price_for(subtotal)
    return found


def get_method(method_id: int, *, include_inactive: bool = False) -> ShippingMethod:
    """A method; an inactive one only with `include_inactive` (admins), else a 404."""
    method = get_or_404(ShippingMethod, method_id)
    if not method.is_active and not include_inactive:
        raise NotFound(f"Shipping method {method_id} does not exist.")
    return method


# --- admin ----------------------------------------------------------------------------------


def _set_countries(method: ShippingMethod, codes: Iterable[str]) -> None:
    """Keep the rows of countries still wanted, add the new ones (the others are deleted);
    with "*" no other country is needed."""
    wanted = sorted(set(codes))
    if EVERYWHERE in wanted:
        wanted = [EVERYWHERE]
    kept = {d.country: d for d in method.destinations if d.country in wanted}
    method.destinations = [kept.get(c) or ShippingDestination(country=c) for c in wanted]


def _check_days(method: ShippingMethod) -> None:
    if method.min_days > method.max_days:
        message = f"At most max_days ({method.max_days})."
        raise Unprocessable("min_days is above max_days.", errors={"min_days": [message]})


def create_method(actor: User, data: ShippingMethodCreate) -> ShippingMethod:
    with unit_of_work() as session:
        fields = {k: v for k, v in data.items() if k != "countries"}
        method = ShippingMethod(**fields)
        _set_countries(method, data["countries"])
        _check_days(method)
        session.add(method)
        session.flush()
        record(Action.SHIPPING_METHOD_CREATED, actor=actor, target_type=Target.SHIPPING_METHOD,
               target_id=method.id, changes=snapshot(method, FIELDS))  # fmt: skip
        invalidate(SHIPPING_METHODS)
    return method


def update_method(actor: User, method_id: int, data: ShippingMethodUpdate) -> ShippingMethod:
    """Change a method: orders placed keep the cost and name they were given."""
    with unit_of_work():
        method = get_or_404(ShippingMethod, method_id, for_update=True)
        with changes_recorded(
            Action.SHIPPING_METHOD_UPDATED, actor=actor, target_type=Target.SHIPPING_METHOD,
            target=method, fields=FIELDS,
        ):  # fmt: skip
            for name, value in data.items():
                if name == "countries":
                    _set_countries(method, value)  # type: ignore[arg-type]
                else:
                    setattr(method, name, value)
            _check_days(method)
        invalidate(SHIPPING_METHODS)
    return method


def delete_method(actor: User, method_id: int) -> None:
    """Delete a method: orders shipped by it keep its name and carrier (their id is nulled)."""
    with unit_of_work() as session:
        method = get_or_404(ShippingMethod, method_id, for_update=True)
        record(Action.SHIPPING_METHOD_DELETED, actor=actor, target_type=Target.SHIPPING_METHOD,
               target_id=method.id, changes=snapshot(method, FIELDS))  # fmt: skip
        session.delete(method)
        invalidate(SHIPPING_METHODS)
