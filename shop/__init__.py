"""shop: an e-commerce backend. `create_app()` builds the Flask application."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from flask import Flask, Request, Response
from flask.sessions import SessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from shop import bus, edge, idempotency, media, metrics, privacy, ratelimits, replica, tracking
from shop.api import (
    DESCRIPTION,
    CrossFieldRules,
    IdConverter,
    RequiredAnswers,
    api,
    docs_assets,
    register_errorhandlers,
)
from shop.audit.personal_data import PERSONAL_DATA as AUDIT_PERSONAL_DATA
from shop.audit.routes import blp as audit_api
from shop.auth.personal_data import PERSONAL_DATA as AUTH_PERSONAL_DATA
from shop.auth.phone_routes import blp as phone_api
from shop.auth.routes import blp as auth_api
from shop.auth.tokens import load_token_user
from shop.cli import register_commands
from shop.config import load_config
from shop.console import blp as console
from shop.db import db
from shop.errors import problem
from shop.events.personal_data import PERSONAL_DATA as EVENTS_PERSONAL_DATA
from shop.events.routes import blp as events_api
from shop.events.routes import webhooks_blp as webhooks_api
from shop.events.subscribers import SUBSCRIBERS as EVENTS_SUBSCRIBERS
from shop.extensions import cache, cors, jwt, limiter, migrate
from shop.inventory.personal_data import PERSONAL_DATA as INVENTORY_PERSONAL_DATA
from shop.inventory.routes import blp as inventory_api
from shop.inventory.routes import notifications_blp as notifications_api
from shop.inventory.subscribers import SUBSCRIBERS as INVENTORY_SUBSCRIBERS
from shop.merchandising.personal_data import PERSONAL_DATA as MERCHANDISING_PERSONAL_DATA
from shop.merchandising.routes import blp as wishlist_api
from shop.merchandising.routes import coupons_blp as coupons_api
from shop.merchandising.subscribers import SUBSCRIBERS as MERCHANDISING_SUBSCRIBERS
from shop.observability import blp as health
from shop.observability import configure_logging, register_request_hooks
from shop.ops.routes import blp as system_api
from shop.ops.routes import metrics_blp
from shop.ops.subscribers import SUBSCRIBERS as OPS_SUBSCRIBERS
from shop.orders import stripe_api
from shop.orders.payment_routes import blp as payments_api
from shop.orders.personal_data import PERSONAL_DATA as ORDERS_PERSONAL_DATA
from shop.orders.refund_routes import blp as refunds_api
from shop.orders.return_routes import blp as returns_api
from shop.orders.routes import CART_TOKEN_SCHEME, ORDER_KEY_SCHEME
from shop.orders.routes import blp as orders_api
from shop.orders.routes import carts_blp as carts_api
from shop.orders.seller_routes import blp as seller_orders_api
from shop.orders.shipment_routes import blp as shipments_api
from shop.orders.subscribers import SUBSCRIBERS as ORDERS_SUBSCRIBERS
from shop.products.personal_data import PERSONAL_DATA as PRODUCTS_PERSONAL_DATA
from shop.products.routes import blp as products_api
from shop.products.routes import flash_sales_blp as flash_sales_api
from shop.queues import init_redis
from shop.recommendations.personal_data import PERSONAL_DATA as RECOMMENDATIONS_PERSONAL_DATA
from shop.recommendations.routes import blp as recommendations_api
from shop.recommendations.subscribers import SUBSCRIBERS as RECOMMENDATIONS_SUBSCRIBERS
from shop.reports.personal_data import PERSONAL_DATA as REPORTS_PERSONAL_DATA
from shop.reports.routes import best_sellers_blp as best_sellers_api
from shop.reports.routes import blp as reports_api
from shop.reports.routes import seller_blp as seller_reports_api
from shop.reports.subscribers import SUBSCRIBERS as REPORTS_SUBSCRIBERS
from shop.reviews.personal_data import PERSONAL_DATA as REVIEWS_PERSONAL_DATA
from shop.reviews.routes import blp as reviews_api
from shop.shipping.routes import blp as shipping_methods_api
from shop.tax.routes import blp as tax_rates_api

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Application factory; `config` overrides what the environment says (tests)."""
    load_dotenv()
    app = Flask(__name__, instance_relative_config=True)
    app.session_interface = _NoCookieSessions()
    app.config.update(load_config(app.instance_path, config))
    if app.config["TRUSTED_PROXIES"]:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    register_extensions(app)
    bus.init_app(
        app,
        (
            *INVENTORY_SUBSCRIBERS,
            *REPORTS_SUBSCRIBERS,
            *EVENTS_SUBSCRIBERS,
            *MERCHANDISING_SUBSCRIBERS,
            *ORDERS_SUBSCRIBERS,
            *RECOMMENDATIONS_SUBSCRIBERS,
            *OPS_SUBSCRIBERS,
        ),
    )
    # Every domain's part of a user's personal data: exported (in this order) and erased.
    privacy.init_app(
        app,
        (
            AUTH_PERSONAL_DATA,
            ORDERS_PERSONAL_DATA,
            MERCHANDISING_PERSONAL_DATA,
            REVIEWS_PERSONAL_DATA,
            EVENTS_PERSONAL_DATA,
            AUDIT_PERSONAL_DATA,
            PRODUCTS_PERSONAL_DATA,
            INVENTORY_PERSONAL_DATA,
            REPORTS_PERSONAL_DATA,
            RECOMMENDATIONS_PERSONAL_DATA,
            idempotency.PERSONAL_DATA,
        ),
    )
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    return app


class _NoCookieSessions(SessionInterface):
    """A bearer-token API keeps no cookie session: skip opening one on every request."""

    def open_session(self, app: Flask, request: Request) -> None:
        return None

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        return None


def register_extensions(app: Flask) -> None:
    configure_logging(app)
    register_request_hooks(app)
    metrics.init_app(app)
    ratelimits.init_app(app)
    edge.init_app(app)
    db.init_app(app)
    replica.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    jwt.init_app(app)
    cache.init_app(app)
    cors.init_app(
        app,
        resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]}},
        expose_headers=["X-Request-ID", "Location", "Retry-After", "ETag", *ratelimits.HEADERS],
    )
    limiter.init_app(app)
    _scope_limiter_to(app, auth_api.name, phone_api.name, carts_api.name, console.name)
    init_redis(app)
    tracking.init_app(app)
    media.init_app(app)
    stripe_api.init_app(app)
    api.init_app(
        app,
        spec_kwargs={
            "info": {"description": DESCRIPTION},
            "extra_plugins": [RequiredAnswers(), CrossFieldRules()],
        },
    )
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    api.spec.components.security_scheme(
        CART_TOKEN_SCHEME, {"type": "apiKey", "in": "header", "name": "X-Cart-Token"}
    )
    api.spec.components.security_scheme(
        ORDER_KEY_SCHEME, {"type": "apiKey", "in": "header", "name": "X-Order-Key"}
    )


def _scope_limiter_to(app: Flask, *blueprints: str) -> None:
    """flask-limiter hooks every request of the app; every limit of ours is on the auth and
    phone blueprints' views and POST /carts (its own blueprint), so its hooks move there (on
    other routes they cost a fifth of a cached answer's time)."""

    def is_limiters(hook: Any) -> bool:
        owner = hook.args[0] if isinstance(hook, partial) else getattr(hook, "__self__", None)
        return owner is limiter

    hooks: Any
    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        for blueprint in blueprints:
            hooks.setdefault(blueprint, []).extend(h for h in hooks[None] if is_limiters(h))
        hooks[None] = [h for h in hooks[None] if not is_limiters(h)]


def register_blueprints(app: Flask) -> None:
    app.url_map.converters["int"] = IdConverter  # before any route is added
    app.register_blueprint(docs_assets)
    app.register_blueprint(console)  # HTML at /admin/, not part of the API's OpenAPI
    app.register_blueprint(metrics_blp)
    for blueprint in (
        health,
        auth_api,
        phone_api,
        audit_api,
        products_api,
        reviews_api,
        inventory_api,
        notifications_api,
        flash_sales_api,
        wishlist_api,
        coupons_api,
        tax_rates_api,
        shipping_methods_api,
        carts_api,
        orders_api,
        payments_api,
        seller_orders_api,
        refunds_api,
        returns_api,
        shipments_api,
        reports_api,
        seller_reports_api,
        best_sellers_api,
        recommendations_api,
        events_api,
        webhooks_api,
        media.blp,
        system_api,
    ):
        api.register_blueprint(blueprint)


def _unauthorized(reason: str) -> Any:
    return problem(401, reason)


# Every token failure is a 401 problem; the user lookup also enforces revocation.
jwt.unauthorized_loader(_unauthorized)
jwt.invalid_token_loader(_unauthorized)
jwt.expired_token_loader(lambda _h, _p: problem(401, "The token has expired."))
jwt.revoked_token_loader(lambda _h, _p: problem(401, "The token has been revoked."))
jwt.needs_fresh_token_loader(lambda _h, _p: problem(401, "A fresh token is required."))
jwt.token_verification_failed_loader(lambda _h, _p: problem(401, "The token is not valid."))
jwt.user_lookup_loader(lambda _h, payload: load_token_user(payload))
jwt.user_lookup_error_loader(
    lambda _h, _p: problem(401, "The token has been revoked or its user disabled.")
)
