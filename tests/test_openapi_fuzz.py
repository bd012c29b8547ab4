"""Schemathesis over the app's own OpenAPI document with every check it has, anonymous, as a
customer and as an admin.

Every operation the spec documents is fuzzed in-process: no 5xx; every status, header and
content type documented; every answer matching its schema; data the schema allows accepted and
data it forbids rejected; authentication not ignored. New endpoints join automatically.

What a JSON Schema cannot say is taught to the generator here, and only that: a body's ids
point at rows that exist (an unknown one is a documented 422), a price range's minimum does not
exceed its maximum, relevance sorts only a text query, a report's range is ordered and at most
MAX_DAYS long (all stated in the parameters' descriptions), a purchase order's costs fit in
money, a coupon code names a coupon and a coupon's value and window fit its kind (stated in
the schema's description), a tax rate's region is in its country (the same), a flash sale's
window is ordered and it names products or categories, a webhook's URL is a public address (a
receiver's name that does not resolve, or resolves to a private address, is a documented 422),
an import's file is a CSV in the export's columns (its description; any other file is a
documented 422), a refund or a shipment names each order line once (its schema's description;
a return and a return's receipt too), a shipping method's days are ordered (the same) and it
is made inactive (an order names none, so the flat rate applies), a phone is a number its
country's plan allows (the field's description), and the rows they all refer to are not
changed or deleted by an example (sent to an id that does not exist instead). A code sent by
email or text, or an authenticator's, cannot be known: a well-formed wrong one is a documented
400 there. Logout, change-password and erasing the account (DELETE /auth/me) end the
credentials they are sent with, so each of their examples runs with a user of its own and that
user's real secrets.
"""

import copy
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
import schemathesis.specs.openapi.checks  # registers the OpenAPI checks
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS as REGISTRY
from schemathesis.config import SchemathesisConfig
from schemathesis.core import NotSet

from shop.merchandising.coupons import create_coupon
from shop.reports.schemas import MAX_DAYS
from shop.schemas import MAX_MONEY
from shop.security import Role
from tests.factories import (
    PASSWORD,
    bearer,
    make_category,
    make_product,
    make_user,
    tokens_for,
)

CHECKS = list(REGISTRY.get_all())
# An operation a guest may call takes a bearer token or a guest credential (X-Cart-Token,
# X-Order-Key). schemathesis' ignored_auth probe keeps the run's bearer token and adds an
# invalid guest credential: the bearer token is what counts then (a 2xx), and a guest
# credential alone that is unknown is a 404 (API.md), not a 401. Those operations are checked
# for it in tests/orders/test_guest_cart.py and test_guest_checkout.py instead.
GUEST_SCHEMES = ("cartToken", "orderKey")
GUEST_CHECKS = [check for check in CHECKS if check.__name__ != "ignored_auth"]
EXAMPLES = 20
API = "/api/v1"
OWN_CREDENTIALS = {f"{API}/auth/logout", f"{API}/auth/change-password", f"{API}/auth/me"}
# A code sent by email or text, or shown by an authenticator app, is a secret no generator
# knows: a well-formed wrong one is the documented 400 (API.md: "wrong/expired code 400"), not
# valid data refused.
SECRET_CODES = {f"{API}/auth/verify-email", f"{API}/auth/phone/verify", f"{API}/auth/2fa/enable"}
ID_MAX = 2**31 - 1
PUBLIC_RECEIVER = "http://93.184.215.14/hooks"  # an address literal: resolves without DNS
PHONE = "+16502530000"
CATALOG_CSV = "sku,name,price,stock\nFUZZ-1,Fuzzed,1.00,1\n"


@pytest.fixture
def api_schema(app):
    # Text with NUL is a documented 422 everywhere (info description), so it is not generated
    # as if it were valid; lone surrogates are not UTF-8 and never generated (the codec).
    config = SchemathesisConfig()
    config.projects.default.generation.update(allow_x00=False, codec="utf-8")
    return schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")
fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def world(app, client):
    """What a body may refer to: a category, a product with stock, and per user an address."""
    category = make_category(app, name="Fuzzed")
    product = make_product(app, category_id=category.id, stock=1_000_000)
    addresses: dict[str, int] = {}

    def address_of(headers: dict[str, str]) -> int:
        key = headers["Authorization"]
        if key not in addresses:  # the user's first address, which the fuzzer may have made
            body = {"line1": "1 Main St", "city": "Town", "postal_code": "1", "country": "US"}
            made = client.post(f"{API}/addresses", headers=headers, json=body)
            if made.status_code == 409:  # as many as an account may have
                made = client.get(f"{API}/addresses?page_size=1", headers=headers)
                addresses[key] = made.json["items"][0]["id"]
            else:
                assert made.status_code == 201, made.json
                addresses[key] = made.json["id"]
        return addresses[key]

    with app.app_context():
        coupon = create_coupon(
            None,  # type: ignore[arg-type]
            {"code": "FUZZED", "kind": "percent", "value": Decimal("10"), "max_per_customer": None},
        )
    return {
        "category": category.id,
        "product": product.id,
        "address_of": address_of,
        "coupon": coupon.code,
        "kept": {"category_id": category.id, "product_id": product.id, "coupon_id": coupon.id},
    }


def leave_the_world_alone(case: Any, world: dict[str, Any]) -> None:
    """A change or deletion aimed at one of the world's rows goes to an id that does not
    exist (a documented 404): the rows the other examples refer to stay as they are."""
    if case.method not in ("PATCH", "DELETE", "PUT") or not isinstance(case.path_parameters, dict):
        return
    kept = {k: ID_MAX for k, v in case.path_parameters.items() if world["kept"].get(k) == v}
    if kept and not case.path.startswith(f"{API}/wishlist"):  # a wishlist is the user's own
        case.path_parameters = {**case.path_parameters, **kept}


def send_unknown_parameters(case: Any) -> None:
    """An unknown query parameter a negative example holds with an empty list or object as its
    value is not sent at all (no key=value pair to send), which leaves an example the API
    rightly accepts: it is sent with a value, as the unknown parameter it is meant to be."""
    if not isinstance(case.query, dict):
        return
    raw = case.operation.definition.raw.get("parameters", [])
    known = {p["name"] for p in raw if p.get("in") == "query"}
    sent = {k: "x" if k not in known and v in ([], {}) else v for k, v in case.query.items()}
    if sent != case.query:
        case.query = sent


def is_id(value: Any) -> bool:
    return type(value) is int and 1 <= value <= ID_MAX


def refer_to_real_rows(body: Any, world: dict[str, Any], headers: dict[str, str]) -> None:
    if isinstance(body, list):
        for item in body:
            refer_to_real_rows(item, world, headers)
        return
    if not isinstance(body, dict):
        return
    for name in ("category_id", "parent_id"):
        if is_id(body.get(name)):
            body[name] = world["category"]
    if is_id(body.get("product_id")):
        body["product_id"] = world["product"]
        if is_id(body.get("variant_id")):  # a variant of another product is a 422 too
            del body["variant_id"]
    attributes = body.get("attributes")
    if isinstance(attributes, dict):  # their names' lengths (OpenAPI 3.0 has no propertyNames)
        body["attributes"] = {k: v for k, v in attributes.items() if 1 <= len(k) <= 50}
    for name in ("coupon_code", "code"):  # the code of an existing coupon (else a 422)
        if isinstance(body.get(name), str) and "kind" not in body:
            body[name] = world["coupon"]
    if isinstance(body.get("product_ids"), list):
        body["product_ids"] = [world["product"]] if body["product_ids"] else []
    if isinstance(body.get("category_ids"), list):
        body["category_ids"] = [world["category"]] if body["category_ids"] else []
    if is_id(body.get("shipping_method_id")):  # none ships anywhere: the flat rate applies
        del body["shipping_method_id"]
    if is_id(body.get("address_id")) and "Authorization" in headers:
        body["address_id"] = world["address_of"](headers)
    for value in body.values():
        refer_to_real_rows(value, world, headers)


def keep_costs_within_money(body: dict[str, Any]) -> None:
    """A purchase order's line and total costs are money: at most MAX_MONEY."""
    lines = body.get("items")
    if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
        return
    try:
        costs = [Decimal(line["unit_cost"]) * line["quantity"] for line in lines]
    except (KeyError, TypeError, ArithmeticError):
        return
    if sum(costs) > MAX_MONEY or any(cost > MAX_MONEY for cost in costs):
        for line in lines:
            line["unit_cost"] = "1.00"


def keep_coupons_whole(body: dict[str, Any], *, patch: bool) -> None:
    """A percent coupon's value is 1 to 100, a fixed one's at least 0.01, its window ordered
    (a change sends both ends of it or neither)."""
    if body.get("kind") == "percent":
        body["value"] = "10.00"
    elif body.get("kind") == "fixed":
        body["value"] = "5.00"
    elif patch:
        body.pop("value", None)  # its kind may be either
    start, end = body.get("starts_at"), body.get("ends_at")
    if isinstance(start, str) and isinstance(end, str) and start >= end:
        body["starts_at"], body["ends_at"] = None, None
    elif patch and (start is None) != (end is None):
        body.pop("starts_at", None)
        body.pop("ends_at", None)


def keep_tax_rates_whole(body: dict[str, Any], *, patch: bool) -> None:
    """A region is a subdivision of the rate's country (a change of the region alone is not
    sent: the rate's country is not known here)."""
    region, country = body.get("region"), body.get("country")
    if isinstance(region, str) and isinstance(country, str):
        body["region"] = country + region[2:]
    elif patch and isinstance(region, str):
        del body["region"]


def keep_flash_sales_whole(body: dict[str, Any], world: dict[str, Any], *, patch: bool) -> None:
    """A flash sale ends after it starts and names products or categories (a change keeps
    that with what the sale has: one end of its window alone is not sent)."""
    start, end = body.get("starts_at"), body.get("ends_at")
    if isinstance(start, str) and isinstance(end, str):
        if start >= end:
            body["starts_at"], body["ends_at"] = "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z"
    elif patch:
        body.pop("starts_at", None)
        body.pop("ends_at", None)
    if patch:  # the sale may name nothing else
        for name in ("product_ids", "category_ids"):
            if body.get(name) == []:
                body[name] = [world["product" if name == "product_ids" else "category"]]
    elif not body.get("product_ids") and not body.get("category_ids"):
        body["product_ids"] = [world["product"]]


def keep_shipping_methods_whole(body: dict[str, Any], *, patch: bool) -> None:
    """A method's min_days is at most its max_days (a change sends both or neither: the stored
    ones are not known here), and it stays inactive: an active one would make every order to
    its countries name a method, which the other examples do not."""
    low, high = body.get("min_days"), body.get("max_days")
    if isinstance(low, int) and isinstance(high, int):
        body["min_days"], body["max_days"] = min(low, high), max(low, high)
    elif patch:
        body.pop("min_days", None)
        body.pop("max_days", None)
    body["is_active"] = False


def keep_refund_lines_once(body: dict[str, Any]) -> None:
    """A refund, a return, a receipt or a shipment names each order line at most once (its
    schema's description)."""
    lines = body.get("items")
    if isinstance(lines, list) and all(isinstance(line, dict) for line in lines):
        once = {repr(line.get("order_item_id")): line for line in lines}
        body["items"] = list(once.values())


def keep_phones_dialable(body: dict[str, Any], generated: dict[str, Any]) -> None:
    """A phone is a number its country's plan allows, in international form (the field's
    description; a JSON Schema pattern cannot hold the plans), and an account's code (texted,
    emailed, an authenticator's) is what was generated for it, not a coupon's code."""
    if isinstance(body.get("phone"), str) and body["phone"]:
        body["phone"] = PHONE
    if isinstance(generated, dict) and isinstance(generated.get("code"), str):
        body["code"] = generated["code"]


def keep_ranges_ordered(query: dict[str, Any]) -> None:
    if query.get("sort") == "relevance" and not query.get("q"):
        del query["sort"]  # relevance ranks a text query (stated in its description)
    low, high = query.get("min_price"), query.get("max_price")
    if isinstance(low, str) and isinstance(high, str):
        try:
            if float(low) > float(high):
                query["min_price"], query["max_price"] = high, low
        except ValueError:
            pass
    start, end = query.get("start"), query.get("end", date.today().isoformat())
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except (TypeError, ValueError):
        return
    first, last = min(first, last), max(first, last)
    query["start"] = max(first, last - timedelta(days=MAX_DAYS - 1)).isoformat()
    query["end"] = last.isoformat()


def run(case, app, world, headers: dict[str, str]) -> None:
    # Changed copies are assigned back, so that schemathesis validates the case again and
    # knows whether what it sends is still valid or invalid data.
    # The query's values are only reassigned, never changed in place: a shallow copy (a
    # deep one cannot copy schemathesis' delimited values, such as facets=category,price).
    body = copy.deepcopy(case.body)
    query = dict(case.query) if isinstance(case.query, dict) else case.query
    valid = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
    if case.path in OWN_CREDENTIALS and headers:
        user = make_user(app, role=Role.CUSTOMER)
        tokens = tokens_for(app, user)
        headers = bearer(tokens["access_token"])
        if valid and isinstance(body, dict):
            if isinstance(body.get("refresh_token"), str):
                body["refresh_token"] = tokens["refresh_token"]
            if isinstance(body.get("current_password"), str):
                body["current_password"] = PASSWORD
            if case.path == f"{API}/auth/me" and isinstance(body.get("password"), str):
                body["password"] = PASSWORD  # DELETE /auth/me: the account erased
    if valid and body is not None and not isinstance(body, NotSet):
        refer_to_real_rows(body, world, headers)
        if isinstance(body, dict):
            keep_costs_within_money(body)
            if case.path.startswith(f"{API}/coupons"):
                keep_coupons_whole(body, patch=case.method == "PATCH")
            if case.path.startswith(f"{API}/tax-rates"):
                keep_tax_rates_whole(body, patch=case.method == "PATCH")
            if case.path.startswith(f"{API}/shipping-methods"):
                keep_shipping_methods_whole(body, patch=case.method == "PATCH")
            if case.path.startswith(f"{API}/flash-sales"):
                keep_flash_sales_whole(body, world, patch=case.method == "PATCH")
            if case.path.endswith(("/refunds", "/returns", "/receive", "/shipments")):
                keep_refund_lines_once(body)
            if case.path.startswith(f"{API}/webhooks") and isinstance(body.get("url"), str):
                body["url"] = PUBLIC_RECEIVER  # a name may not resolve, or not to the public
            if case.path == f"{API}/products/import" and "file" in body:
                body["file"] = CATALOG_CSV  # text, which the schema's string also is
            if case.path.startswith(f"{API}/auth/"):
                keep_phones_dialable(body, case.body)
        if body != case.body:
            case.body = body
    leave_the_world_alone(case, world)  # valid or not: an invalid query may still go through
    if not valid:
        send_unknown_parameters(case)
    if valid and isinstance(query, dict):
        keep_ranges_ordered(query)
        if query != case.query:
            case.query = query
    security = case.operation.definition.raw.get("security", [])
    guests = any(scheme in GUEST_SCHEMES for alternative in security for scheme in alternative)
    checks = GUEST_CHECKS if guests else CHECKS
    if case.path in SECRET_CODES:
        checks = [check for check in checks if check.__name__ != "positive_data_acceptance"]
    # schemathesis asks for gzip as requests does, but its in-process (WSGI) calls do not
    # inflate what comes back; compression is checked in tests/test_edges.py.
    case.call_and_validate(headers={**headers, "Accept-Encoding": "identity"}, checks=checks)


@schema.parametrize()
@fuzz_settings
def test_anonymous(case, app, world):
    run(case, app, world, {})


@schema.parametrize()
@fuzz_settings
def test_as_customer(case, app, world, as_customer):
    run(case, app, world, as_customer)


@schema.parametrize()
@fuzz_settings
def test_as_admin(case, app, world, as_admin):
    # One admin per operation (a fixture is not re-run per example).
    run(case, app, world, as_admin)
