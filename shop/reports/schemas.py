"""Report query arguments and answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate

from shop.products.schemas import ProductSchema
from shop.reports.aggregates import today
from shop.schemas import AnswerSchema, BaseSchema, Money, id_field

MAX_DAYS = 3 * 366
DEFAULT_DAYS = 30


class RangeArgsSchema(BaseSchema):
    start = fields.Date(
        metadata={
            "description": f"inclusive UTC day, not after end; the range covers at most "
            f"{MAX_DAYS} days; default: 29 days before end"
        }
    )
    end = fields.Date(metadata={"description": "inclusive UTC day; default: today"})
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))

    @post_load
    def _defaults(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data.setdefault("end", today())
        data.setdefault("start", data["end"] - timedelta(days=DEFAULT_DAYS - 1))
        if data["start"] > data["end"]:
            raise ValidationError("Must not be after end (default: today).", "start")
        if (data["end"] - data["start"]).days >= MAX_DAYS:
            raise ValidationError(f"At most {MAX_DAYS} days.", "end")
        return data


class SalesArgsSchema(RangeArgsSchema):
    period = fields.String(load_default="day", validate=validate.OneOf(["day", "week", "month"]))


class TopProductsArgsSchema(RangeArgsSchema):
    by = fields.String(load_default="revenue", validate=validate.OneOf(["revenue", "quantity"]))
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


class SearchReportArgsSchema(RangeArgsSchema):
    class Meta:
        exclude = ("format",)

    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


class TopQuerySchema(AnswerSchema):
    query = fields.String(metadata={"description": "lowercase, spaces collapsed"})
    searches = fields.Integer()
    avg_results = fields.Float()


class ZeroResultQuerySchema(AnswerSchema):
    query = fields.String()
    searches = fields.Integer()


class SearchReportSchema(AnswerSchema):
    start = fields.Date()
    end = fields.Date()
    top_queries = fields.List(fields.Nested(TopQuerySchema))
    zero_result_queries = fields.List(fields.Nested(ZeroResultQuerySchema))


class Figures(AnswerSchema):
    orders = fields.Integer()
    items = fields.Integer()
    revenue = Money(positive=False)


class SalesRowSchema(Figures):
    period_start = fields.Date()


class SalesReportSchema(AnswerSchema):
    period = fields.String()
    start = fields.Date()
    end = fields.Date()
    rows = fields.List(fields.Nested(SalesRowSchema))
    totals = fields.Nested(Figures)
    previous_totals = fields.Nested(Figures)
    growth_pct = fields.Float(allow_none=True)


class TopProductRowSchema(AnswerSchema):
    product_id = fields.Integer()
    sku = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    quantity = fields.Integer()
    revenue = Money(positive=False)


class TopProductsSchema(AnswerSchema):
    start = fields.Date()
    end = fields.Date()
    by = fields.String()
    rows = fields.List(fields.Nested(TopProductRowSchema))


class OrderStatusReportSchema(AnswerSchema):
    start = fields.Date()
    end = fields.Date()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())


class ProductDayRowSchema(AnswerSchema):
    date = fields.Date()
    units_sold = fields.Integer()
    revenue = Money(positive=False)
    orders = fields.Integer()
    views = fields.Integer(metadata={"description": "by signed-in customers and X-Session-ID"})
    cart_adds = fields.Integer()


class ProductReportSchema(AnswerSchema):
    product_id = fields.Integer()
    start = fields.Date()
    end = fields.Date()
    units_sold = fields.Integer()
    revenue = Money(positive=False)
    orders = fields.Integer()
    views = fields.Integer()
    cart_adds = fields.Integer()
    conversion_rate = fields.Float(
        allow_none=True, metadata={"description": "orders / views over the range; null: no views"}
    )
    rows = fields.List(fields.Nested(ProductDayRowSchema))


class WindowFigures(AnswerSchema):
    today = Money(positive=False)
    last_7_days = Money(positive=False)
    last_30_days = Money(positive=False)


class OrderWindowFigures(AnswerSchema):
    today = fields.Integer()
    last_7_days = fields.Integer()
    last_30_days = fields.Integer()
    pending = fields.Integer()


class CustomerFigures(AnswerSchema):
    total = fields.Integer()
    new_last_30_days = fields.Integer()


class DashboardSchema(AnswerSchema):
    revenue = fields.Nested(WindowFigures)
    orders = fields.Nested(OrderWindowFigures)
    average_order_value = Money(positive=False)
    customers = fields.Nested(CustomerFigures)
    low_stock_count = fields.Integer()


class BestSellersArgsSchema(BaseSchema):
    days = fields.Integer(
        load_default=30,
        validate=validate.Range(min=1, max=365),
        metadata={"description": "the window, today included"},
    )
    category = id_field(strict=False, metadata={"description": "includes subcategories"})
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


class BestSellerSchema(AnswerSchema):
    product = fields.Nested(ProductSchema)
    units_sold = fields.Integer(metadata={"description": "in the window"})
