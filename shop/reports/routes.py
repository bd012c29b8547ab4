"""Reports API (staff and admins): dashboard, sales, top products, statuses, per product; and
the storefront's best sellers (anyone)."""

from __future__ import annotations

import csv
import io
from functools import partial
from typing import Any

from flask import Response
from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import Blueprint
from shop.caching import cached_response
from shop.db import Page
from shop.products.cache import CATALOG
from shop.products.pricing import next_boundary
from shop.replica import reads
from shop.reports import behaviour, sellers, services
from shop.reports.cache import REPORTS
from shop.reports.schemas import (
    BestSellersArgsSchema,
    BestSellerSchema,
    DashboardSchema,
    OrderStatusReportSchema,
    ProductReportSchema,
    RangeArgsSchema,
    SalesArgsSchema,
    SalesReportSchema,
    SearchReportArgsSchema,
    SearchReportSchema,
    TopProductsArgsSchema,
    TopProductsSchema,
)
from shop.schemas import page_of
from shop.security import Role

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="Reports")
# Brief: any order, stock or account change bumps the namespace anyway.
cached = cached_response(REPORTS, lambda: "staff", timeout=60)
CSV = {
    "content_type": "text/csv",
    "schema": {"type": "string"},
    "description": "with format=csv",
    "success": True,
}


def _csv(columns: list[str], rows: list[dict[str, Any]], name: str) -> Response:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore",
                            lineterminator="\n")  # fmt: skip
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@blp.route("/dashboard")
class Dashboard(MethodView):
    @blp.auth_required(Role.STAFF)
    @cached
    @reads
    @blp.response(200, DashboardSchema)
    def get(self) -> dict[str, Any]:
        """Revenue, orders, average order value, customers and low stock at a glance"""
        return services.dashboard()


@blp.route("/sales")
class Sales(MethodView):
    @blp.auth_required(Role.STAFF)
    @cached
    @reads
    @blp.arguments(SalesArgsSchema, location="query")
    @blp.alt_response(200, **CSV)
    @blp.response(200, SalesReportSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """Sales by day, week or month, with totals and the previous period's"""
        report = services.sales_report(args["period"], args["start"], args["end"])
        if args["format"] == "csv":
            return _csv(["period_start", "orders", "items", "revenue"], report["rows"], "sales")
        return report


@blp.route("/top-products")
class TopProducts(MethodView):
    @blp.auth_required(Role.STAFF)
    @cached
    @reads
    @blp.arguments(TopProductsArgsSchema, location="query")
    @blp.alt_response(200, **CSV)
    @blp.response(200, TopProductsSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """Best-selling products by revenue or quantity"""
        report = services.top_products(args["start"], args["end"], by=args["by"],
                                       limit=args["limit"])  # fmt: skip
        if args["format"] == "csv":
            columns = ["product_id", "sku", "name", "quantity", "revenue"]
            return _csv(columns, report["rows"], "top-products")
        return report


@blp.route("/order-status")
class OrderStatusReport(MethodView):
    @blp.auth_required(Role.STAFF)
    @cached
    @reads
    @blp.arguments(RangeArgsSchema, location="query")
    @blp.response(200, OrderStatusReportSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Orders created in the range, counted by their current status"""
        return services.order_status_counts(args["start"], args["end"])


@blp.route("/products/<int:product_id>")
class ProductReport(MethodView):
    @blp.auth_required(Role.STAFF)
    @cached
    @reads
    @blp.arguments(RangeArgsSchema, location="query")
    @blp.errors(404)
    @blp.response(200, ProductReportSchema)
    def get(self, args: dict[str, Any], product_id: int) -> dict[str, Any]:
        """One product's units sold, revenue and orders per day"""
        return services.product_report(product_id, args["start"], args["end"])


@blp.route("/search")
class SearchReport(MethodView):
    @blp.auth_required(Role.STAFF)
    @reads
    @blp.arguments(SearchReportArgsSchema, location="query")
    @blp.response(200, SearchReportSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The searches customers made most (GET /products?q= and suggestions, first pages),
        with their results on average, and those that found nothing"""
        return behaviour.search_report(args["start"], args["end"], args["limit"])


seller_blp = Blueprint(
    "seller_reports", __name__, url_prefix="/api/v1/seller/reports", description="Seller reports"
)


@seller_blp.route("/sales")
class SellerSales(MethodView):
    @seller_blp.auth_required(Role.SELLER)
    @cached_response(REPORTS, lambda: f"seller:{current_user.id}", timeout=60)
    @reads
    @seller_blp.arguments(SalesArgsSchema, location="query")
    @seller_blp.alt_response(200, **CSV)
    @seller_blp.response(200, SalesReportSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """/reports/sales over the seller's own lines: orders holding their products, their
        units and what those lines came to"""
        figures = partial(sellers.sales_by_day, current_user)
        report = services.sales_report(args["period"], args["start"], args["end"], figures)
        if args["format"] == "csv":
            return _csv(["period_start", "orders", "items", "revenue"], report["rows"], "sales")
        return report


best_sellers_blp = Blueprint(
    "best_sellers", __name__, url_prefix="/api/v1/products", description="Best sellers"
)


@best_sellers_blp.route("/best-sellers")
class BestSellers(MethodView):
    # Current after any product edit (the catalog's namespace) and any order change (the
    # reports': an order paid or cancelled moves the figures without moving stock).
    @cached_response(CATALOG, lambda: "public", timeout=60, also=(REPORTS,), until=next_boundary)
    @best_sellers_blp.arguments(BestSellersArgsSchema, location="query")
    @best_sellers_blp.response(200, page_of(BestSellerSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """The best sellers: active products ranked by units sold in the last `days` days

        Anyone (no token). Today counts; ties go by product id; `category` narrows it to a
        category and its subcategories, `limit` caps it. Cached for a minute at most (and
        until the next product or order change)."""
        return services.best_sellers(**args)
