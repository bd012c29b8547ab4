"""Events the catalog publishes (see shop.bus)."""

from __future__ import annotations

from dataclasses import dataclass

from shop.bus import Event
from shop.products.models import MovementType


@dataclass(frozen=True)
class StockChanged(Event, name="stock.changed"):
    """A product's (or variant's) stock moved, with its ledger row, in this unit of work."""

    product_id: int
    variant_id: int | None
    movement: str  # MovementType
    delta: int
    stock_after: int  # of the variant when there is one, else of the product
    low_stock_threshold: int

    @property
    def crossed_threshold(self) -> bool:
        """Whether the row entered or left "low stock" (at or below its threshold)."""
        before = self.stock_after - self.delta
        return (self.stock_after <= self.low_stock_threshold) != (
            before <= self.low_stock_threshold
        )

    @property
    def fell_low(self) -> bool:
        """Whether stock went down and is now at or below the threshold."""
        return self.delta < 0 and self.stock_after <= self.low_stock_threshold

    @property
    def back_in_stock(self) -> bool:
        """Whether a sold-out row has stock again (a new row's first stock is not "back")."""
        return (
            self.delta > 0
            and self.stock_after - self.delta <= 0
            and self.movement != MovementType.INITIAL
        )

    @property
    def recovered(self) -> bool:
        """Whether stock rose from at or below the threshold to above it (a new row's first
        stock recovers nothing: no notification can be open for it)."""
        return self.delta > 0 and self.crossed_threshold and self.movement != MovementType.INITIAL


@dataclass(frozen=True)
class ItemCreated(Event, name="product.created"):
    """A product (variant_id None) or a variant was created, with this stock."""

    product_id: int
    variant_id: int | None
    stock: int
    low_stock_threshold: int

    @property
    def low(self) -> bool:
        return self.stock <= self.low_stock_threshold


@dataclass(frozen=True)
class WentOnSale(Event, name="product.on_sale"):
    """A product went on sale: its price fell below its compare-at price (`product_id`), or
    a flash sale started (`flash_sale_id`: its products and categories), once per start."""

    product_id: int | None
    flash_sale_id: int | None
