"""Tax rates API (admin)."""

from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import LOCATION, Blueprint
from shop.db import Page
from shop.schemas import page_of
from shop.security import Role
from shop.tax import rates
from shop.tax.models import TaxRate
from shop.tax.schemas import TaxRateQueryArgsSchema, TaxRateSchema, TaxRateUpdateSchema

blp = Blueprint(
    "tax_rates", __name__, url_prefix="/api/v1/tax-rates", description="Tax rates (admin)"
)


@blp.route("")
class TaxRates(MethodView):
    @blp.auth_required(Role.ADMIN)
    @blp.arguments(TaxRateQueryArgsSchema, location="query")
    @blp.response(200, page_of(TaxRateSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """List tax rates by country, each country's own first, then its regions'"""
        return rates.list_rates(**args)

    @blp.auth_required(Role.ADMIN)
    @blp.arguments(TaxRateSchema)
    @blp.errors(409)
    @blp.response(201, TaxRateSchema, headers=LOCATION)
    def post(self, data: dict[str, Any]) -> tuple[TaxRate, dict[str, str]]:
        """Set the rate of a country, or of a region in it (one each: 409). An address pays
        its region's rate, else its country's, else TAX_RATE"""
        rate = rates.create_rate(current_user, data)
        return rate, {"Location": f"/api/v1/tax-rates/{rate.id}"}


@blp.route("/<int:rate_id>")
class TaxRateById(MethodView):
    @blp.auth_required(Role.ADMIN)
    @blp.errors(404)
    @blp.response(200, TaxRateSchema)
    def get(self, rate_id: int) -> TaxRate:
        """Get a tax rate"""
        return rates.get_rate(rate_id)

    @blp.auth_required(Role.ADMIN)
    @blp.arguments(TaxRateUpdateSchema, required=False)
    @blp.errors(404, 409)
    @blp.response(200, TaxRateSchema)
    def patch(self, data: dict[str, Any], rate_id: int) -> TaxRate:
        """Change a tax rate (orders placed keep the tax they were charged)"""
        return rates.update_rate(current_user, rate_id, data)

    @blp.auth_required(Role.ADMIN)
    @blp.errors(404)
    @blp.response(204)
    def delete(self, rate_id: int) -> None:
        """Delete a tax rate (its destinations pay the next less specific one)"""
        rates.delete_rate(current_user, rate_id)
