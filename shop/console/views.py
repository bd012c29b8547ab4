"""The staff console's pages (/admin/): HTML rendered here, charts drawn by static/console.js
with the vendored uPlot; every action is a POST form with the session's CSRF token that
makes one service call, the same as the API's route would."""

from __future__ import annotations

from typing import Any, cast

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response as BaseResponse

from shop.auth import accounts, two_factor
from shop.auth.models import User
from shop.auth.tokens import Login
from shop.console import overview, session
from shop.errors import ShopError
from shop.extensions import limiter
from shop.orders.refund_schemas import RefundCreateSchema
from shop.orders.refunds import create_refund
from shop.orders.shipment_schemas import ShipmentCreateSchema
from shop.orders.shipments import create_shipment

blp = Blueprint("console", __name__, url_prefix="/admin")

# No inline script or style anywhere: scripts and styles come from /static only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
OPEN = {"console.login", "console.login_second_step"}  # the pages before sign-in


def _login_limit() -> str:
    return str(current_app.config["LOGIN_LIMIT_PER_IP"])


login_limit = limiter.limit(
    _login_limit, deduct_when=lambda r: r.status_code == 401, scope="console-login-ip"
)


def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    user = session.current_user()
    html = render_template(
        f"console/{template}",
        user=user,
        staff=user is not None and session.is_staff(user),
        csrf_token=session.csrf_token(),
        **context,
    )
    return html, status


@blp.before_request
def _guard() -> Any:
    if request.method == "POST" and not session.csrf_ok():
        return page("error.html", 403, message="The form was stale or forged (CSRF token).")
    if request.endpoint in OPEN:
        return None
    user = session.current_user()
    if user is None:
        return redirect(url_for("console.login"), 303)
    if not session.is_staff(user):
        return page("error.html", 403, message="The console is for staff accounts.")
    return None


@blp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"  # nosniff and Referrer-Policy: shop.edge
    return session.save(response)


def _staff() -> User:
    user = session.current_user()
    assert user is not None  # _guard let the request in
    return user


# --- signing in and out ---------------------------------------------------------------------


def _signed_in(login: Login) -> Any:
    if not session.is_staff(login["user"]):
        session.end_family(login)
        return page("error.html", 403, message="The console is for staff accounts.")
    session.begin(login)
    return redirect(url_for("console.dashboard"), 303)


@blp.route("/login", methods=["GET", "POST"])
@login_limit
def login() -> Any:
    if request.method == "GET":
        return page("login.html")
    email, password = request.form.get("email", ""), request.form.get("password", "")
    if not email or not password:
        return page("login.html", 422, error="Email and password, please.", email=email)
    try:
        result = accounts.login(email, password)
    except ShopError as error:
        return page("login.html", error.status, error=error.detail, email=email)
    if "mfa_required" in result:
        return page("second_step.html", mfa_token=cast(two_factor.Challenge, result)["mfa_token"])
    return _signed_in(result)


@blp.post("/login/2fa")
@login_limit
def login_second_step() -> Any:
    token, code = request.form.get("mfa_token", ""), request.form.get("code", "").strip()
    try:
        result = two_factor.finish_login(token, code or None, None)
    except ShopError as error:
        return page("second_step.html", error.status, error=error.detail, mfa_token=token)
    return _signed_in(result)


@blp.post("/logout")
def logout() -> BaseResponse:
    session.end()
    return redirect(url_for("console.login"), 303)


# --- pages ----------------------------------------------------------------------------------


@blp.get("/")
def dashboard() -> Any:
    days = request.args.get("days", 30, type=int)
    if days not in overview.RANGES:
        days = 30
    return page("dashboard.html", data=overview.dashboard(days), ranges=overview.RANGES)


@blp.get("/ship")
def to_ship() -> Any:
    number = request.args.get("page", 1, type=int)
    return page(
        "ship.html",
        orders=overview.orders_to_ship(max(number, 1)),
        done=_notice("shipped", "Order {} marked shipped."),
    )


@blp.post("/orders/<int:order_id>/ship")
def ship(order_id: int) -> Any:
    fields = {k: request.form.get(k, "").strip() for k in ("carrier", "tracking_number")}
    try:
        data = ShipmentCreateSchema().load(fields)
        create_shipment(_staff(), order_id, data)
    except ValidationError as error:
        return _refused("ship.html", 422, _messages(error), orders=overview.orders_to_ship(1))
    except ShopError as error:
        return _refused("ship.html", error.status, error.detail, orders=overview.orders_to_ship(1))
    return redirect(url_for("console.to_ship", shipped=order_id), 303)


@blp.get("/refunds")
def refunds() -> Any:
    number = request.args.get("page", 1, type=int)
    return page(
        "refunds.html",
        owed=overview.refunds_owed(_staff(), max(number, 1)),
        done=_notice("refunded", "Refund recorded on order {}."),
    )


@blp.post("/orders/<int:order_id>/refund")
def refund(order_id: int) -> Any:
    fields = {k: request.form.get(k, "").strip() for k in ("amount", "reason")}
    try:
        data = RefundCreateSchema().load(fields)
        create_refund(_staff(), order_id, data)
    except ValidationError as error:
        return _refused(
            "refunds.html", 422, _messages(error), owed=overview.refunds_owed(_staff(), 1)
        )
    except ShopError as error:
        return _refused(
            "refunds.html", error.status, error.detail, owed=overview.refunds_owed(_staff(), 1)
        )
    return redirect(url_for("console.refunds", refunded=order_id), 303)


def _notice(name: str, text: str) -> str | None:
    """The notice after an action (Post/Redirect/Get): made here from the order's id in the
    address, never text taken from it."""
    order_id = request.args.get(name, type=int)
    number = overview.order_number(order_id) if order_id else None
    return text.format(number) if number else None


@blp.errorhandler(429)
def _too_many(error: Any) -> Any:
    return page("login.html", 429, error="Too many sign-in attempts from here: wait a while.")


def _refused(template: str, status: int, message: str, **context: Any) -> Any:
    return page(template, status, error=message, **context)


def _messages(error: ValidationError) -> str:
    messages = error.normalized_messages()  # type: ignore[no-untyped-call]
    return "; ".join(f"{name}: {' '.join(map(str, text))}" for name, text in messages.items())
