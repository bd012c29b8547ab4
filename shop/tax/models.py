"""A tax rate: a country's, or a region's within it (ISO 3166-2, e.g. CA-ON)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import CheckConstraint, Index, Numeric, String, false, func
from sqlalchemy.orm import Mapped, mapped_column

from shop.db import Base, TimestampMixin


class TaxRate(TimestampMixin, Base):
    __tablename__ = "tax_rates"
    __table_args__ = (CheckConstraint("rate >= 0 AND rate <= 1", name="rate_fraction"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(6))  # "CA-ON"; null: the whole country
    rate: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    applies_to_shipping: Mapped[bool] = mapped_column(default=False, server_default=false())
    name: Mapped[str] = mapped_column(String(100))


# One rate per country and per region (a country's own has no region).
Index(
    "uq_tax_rates_country_region",
    TaxRate.country,
    func.coalesce(TaxRate.region, ""),
    unique=True,
)
