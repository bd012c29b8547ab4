"""Tax rates: admins' CRUD, and the rate of a destination (region, then country, then
TAX_RATE), read from a cached copy of the table (one per write), so checkout pays no query."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from shop.audit.models import Action, Target
from shop.audit.services import changes_recorded, record, snapshot
from shop.auth.models import User
from shop.caching import cached_value, invalidate
from shop.db import Page, db, get_or_404, paginate, unit_of_work
from shop.errors import Conflict, Unprocessable
from shop.schemas import CENT
from shop.tax.models import TaxRate

FIELDS = ("country", "region", "rate", "applies_to_shipping", "name")
TAX_RATES = "tax-rates"  # the cache namespace of the table's copy


@dataclass(frozen=True)
class Rate:
    """The rate a destination pays."""

    name: str
    rate: Decimal
    applies_to_shipping: bool

    def of(self, amount: Decimal, *, included: bool) -> Decimal:
        """The tax of `amount`, rounded half up: added to it, or (`included`) inside it."""
        tax = amount * self.rate / (1 + self.rate) if included else amount * self.rate
        return tax.quantize(CENT, rounding=ROUND_HALF_UP)


def for_destination(country: str, state: str = "") -> Rate:
    """The most specific rate of an address: its region's (`state` written "ON" or
    "CA-ON"), else its country's, else TAX_RATE (goods only)."""
    rates = cached_value(TAX_RATES, "all", _table, timeout=3600)
    country = country.upper()
    region = region_code(country, state)
    found = (region and rates.get((country, region))) or rates.get((country, None))
    if found:
        return Rate(*found)
    return Rate("Tax", current_app.config["TAX_RATE"], False)


def region_code(country: str, state: str) -> str | None:
    """ "ON" or "ca-on" in Canada: "CA-ON"; None when `state` is empty."""
    state = state.strip().upper()
    if not state:
        return None
    return state if state.startswith(f"{country.upper()}-") else f"{country.upper()}-{state}"


def _table() -> dict[tuple[str, str | None], tuple[str, Decimal, bool]]:
    rows = db.session.execute(
        select(TaxRate.country, TaxRate.region, TaxRate.name, TaxRate.rate,
               TaxRate.applies_to_shipping)
    )  # fmt: skip
    return {(r.country, r.region): (r.name, r.rate, r.applies_to_shipping) for r in rows}


# --- admin ----------------------------------------------------------------------------------


def list_rates(page: int, page_size: int, country: str | None = None) -> Page:
    stmt = select(TaxRate).order_by(TaxRate.country, TaxRate.region.nulls_first(), TaxRate.id)
    if country is not None:
        stmt = stmt.where(TaxRate.country == country.upper())
    return paginate(stmt, page, page_size)


def get_rate(rate_id: int) -> TaxRate:
    return get_or_404(TaxRate, rate_id)


def _check(rate: TaxRate) -> None:
    if rate.region is not None and not rate.region.startswith(f"{rate.country}-"):
        raise Unprocessable(
            f"The region {rate.region} is not in {rate.country}.",
            errors={"region": [f"A subdivision of {rate.country}: {rate.country}-..."]},
        )
    taken = db.session.scalar(
        select(TaxRate.id).where(
            TaxRate.country == rate.country,
            func.coalesce(TaxRate.region, "") == (rate.region or ""),
            TaxRate.id != (rate.id or 0),
        )
    )
    if taken is not None:
        where = rate.region or rate.country
        raise Conflict(f"{where} has a rate already.", errors={"region": ["Taken."]})


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("country"):
        data["country"] = data["country"].upper()
    if data.get("region"):
        data["region"] = data["region"].upper()
    return data


def create_rate(actor: User, data: dict[str, Any]) -> TaxRate:
    with unit_of_work() as session:
        rate = TaxRate(**_normalise(data))
        _check(rate)
        session.add(rate)
        session.flush()  # a concurrent twin fails here, on the unique index: 409
        record(Action.TAX_RATE_CREATED, actor=actor, target_type=Target.TAX_RATE,
               target_id=rate.id, changes=snapshot(rate, FIELDS))  # fmt: skip
        invalidate(TAX_RATES)
    return rate


def update_rate(actor: User, rate_id: int, data: dict[str, Any]) -> TaxRate:
    with unit_of_work():
        rate = get_or_404(TaxRate, rate_id, for_update=True)
        with changes_recorded(
            Action.TAX_RATE_UPDATED, actor=actor, target_type=Target.TAX_RATE, target=rate,
            fields=FIELDS,
        ):  # fmt: skip
            for name, value in _normalise(data).items():
                setattr(rate, name, value)
            _check(rate)
        invalidate(TAX_RATES)
    return rate


def delete_rate(actor: User, rate_id: int) -> None:
    with unit_of_work() as session:
        rate = get_or_404(TaxRate, rate_id, for_update=True)
        record(Action.TAX_RATE_DELETED, actor=actor, target_type=Target.TAX_RATE,
               target_id=rate.id, changes=snapshot(rate, FIELDS))  # fmt: skip
        session.delete(rate)
        invalidate(TAX_RATES)
