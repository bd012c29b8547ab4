"""Settings read from the environment (and a `.env` file) when the app is created."""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

DEFAULT_SECRET = "dev-only-insecure-secret-set-SECRET_KEY-in-production"
PRODUCTION = "production"


class ConfigError(RuntimeError):
    """The configuration cannot run the app safely."""


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def load_config(instance_path: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the app config from defaults, the environment and explicit overrides (tests)."""
    env = os.environ.get
    shop_env = env("SHOP_ENV", "development")
    database_url = env("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'shop.db'}"
    config: dict[str, Any] = {
        "SHOP_ENV": shop_env,
        "SECRET_KEY": env("SECRET_KEY", DEFAULT_SECRET),
        "JWT_SECRET_KEY": env("JWT_SECRET_KEY", DEFAULT_SECRET),
        "SQLALCHEMY_DATABASE_URI": database_url,
        # A PostgreSQL streaming replica of it (shop.replica): the reports read it while it is
        # at most REPLICA_MAX_LAG_SECONDS behind, except for a user who wrote in the last
        # REPLICA_STICKY_SECONDS (at least the lag bound: then a writer never reads its past).
        "DATABASE_REPLICA_URL": env("DATABASE_REPLICA_URL") or None,
        "REPLICA_MAX_LAG_SECONDS": float(env("REPLICA_MAX_LAG_SECONDS", "2")),
        "REPLICA_STICKY_SECONDS": float(env("REPLICA_STICKY_SECONDS", "5")),
        "REDIS_URL": env("REDIS_URL") or None,
        "CACHE_REDIS_URL": env("CACHE_REDIS_URL") or None,
        "LOG_LEVEL": env("LOG_LEVEL", "INFO"),
        "LOG_JSON": _env_bool("LOG_JSON", True),
        # The staff console's cookie (/admin/) is Secure unless this says otherwise (plain
        # http on a host other than localhost, e.g. a LAN test box).
        "CONSOLE_COOKIE_SECURE": _env_bool("CONSOLE_COOKIE_SECURE", True),
        # Mail: with no MAIL_SERVER the message is written to the log instead of sent.
        "MAIL_SERVER": env("MAIL_SERVER") or None,
        "MAIL_PORT": _env_int("MAIL_PORT", 25),
        "MAIL_USERNAME": env("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": env("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": _env_bool("MAIL_USE_TLS", False),
        "MAIL_DEFAULT_SENDER": env("MAIL_DEFAULT_SENDER", "shop@localhost"),
        # Text messages (shop.sms): `log` writes them to the log; `http` POSTs {to, body} as
        # JSON to SMS_HTTP_URL with the bearer SMS_HTTP_TOKEN, waiting SMS_HTTP_TIMEOUT seconds.
        "SMS_BACKEND": env("SMS_BACKEND", "log"),
        "SMS_HTTP_URL": env("SMS_HTTP_URL") or None,
        "SMS_HTTP_TOKEN": env("SMS_HTTP_TOKEN") or None,
        "SMS_HTTP_TIMEOUT": float(env("SMS_HTTP_TIMEOUT", "5")),
        "ADMIN_EMAILS": [e.strip() for e in env("ADMIN_EMAILS", "").split(",") if e.strip()],
        "LOW_STOCK_THRESHOLD": _env_int("LOW_STOCK_THRESHOLD", 5),
        # Tax: the rate of a destination without one of its own (tax_rates); prices with the
        # tax in them (extracted) or without it (added).
        "TAX_RATE": Decimal(env("TAX_RATE", "0")),
        "PRICES_INCLUDE_TAX": _env_bool("PRICES_INCLUDE_TAX", False),
        # An account whose email is not verified may log in but not check out (403).
        "REQUIRE_VERIFIED_EMAIL": _env_bool("REQUIRE_VERIFIED_EMAIL", True),
        "CURRENCY": env("CURRENCY", "USD"),
        "SHIPPING_FLAT_RATE": Decimal(env("SHIPPING_FLAT_RATE", "5.00")),
        "FREE_SHIPPING_THRESHOLD": Decimal(env("FREE_SHIPPING_THRESHOLD", "50.00")),
        "PENDING_ORDER_REMINDER_HOURS": _env_int("PENDING_ORDER_REMINDER_HOURS", 24),
        "PENDING_ORDER_EXPIRY_HOURS": _env_int("PENDING_ORDER_EXPIRY_HOURS", 72),
        "IDEMPOTENCY_KEY_TTL": timedelta(hours=_env_int("IDEMPOTENCY_KEY_HOURS", 24)),
        # Guest carts (POST /carts, X-Cart-Token): made at most this often per client address,
        # purged after this many idle days; last_used_at is written at most every so many
        # seconds (a read does not write each time). Guests may order unless this is false.
        "CART_CREATE_LIMIT_PER_IP": env("CART_CREATE_LIMIT_PER_IP", "30 per hour"),
        "CART_IDLE_DAYS": _env_int("CART_IDLE_DAYS", 30),
        "CART_TOUCH_SECONDS": _env_int("CART_TOUCH_SECONDS", 60),
        "GUEST_CHECKOUT": _env_bool("GUEST_CHECKOUT", True),
        # Events are kept this long for the feed and WebSocket replay (at least 24).
        "EVENT_RETENTION_HOURS": max(24, _env_int("EVENT_RETENTION_HOURS", 72)),
        # The WebSocket service (python realtime.py) listens here.
        "REALTIME_BIND": env("REALTIME_BIND", "127.0.0.1:5001"),
        # Webhooks: receivers on private, loopback or link-local addresses are refused unless
        # this is set (a receiver on the same network, tests); attempts per delivery.
        "WEBHOOK_ALLOW_PRIVATE": _env_bool("WEBHOOK_ALLOW_PRIVATE", False),
        "WEBHOOK_MAX_ATTEMPTS": max(1, _env_int("WEBHOOK_MAX_ATTEMPTS", 8)),
        # Returns (POST /orders/{id}/returns) may be asked for this many days after delivery.
        "RETURN_WINDOW_DAYS": _env_int("RETURN_WINDOW_DAYS", 30),
        "PAYMENT_WEBHOOK_SECRET": env("PAYMENT_WEBHOOK_SECRET", ""),
        # The carrier's tracking webhook (POST /shipping/webhook) is signed with this; unset,
        # every call to it is refused (401), as the payment webhook's without its secret.
        "SHIPPING_WEBHOOK_SECRET": env("SHIPPING_WEBHOOK_SECRET", ""),
        # Payments: `manual` (staff and the generic webhook) or `stripe` (PaymentIntents too).
        # STRIPE_API_BASE points the library elsewhere (a test server); STRIPE_TIMEOUT is the
        # seconds to connect and to read each answer of one call (no retry within a request).
        "PAYMENT_PROVIDER": env("PAYMENT_PROVIDER", "manual"),
        "STRIPE_SECRET_KEY": env("STRIPE_SECRET_KEY", ""),
        "STRIPE_WEBHOOK_SECRET": env("STRIPE_WEBHOOK_SECRET", ""),
        "STRIPE_API_BASE": env("STRIPE_API_BASE") or None,
        "STRIPE_TIMEOUT": float(env("STRIPE_TIMEOUT", "5")),
        "CORS_ORIGINS": env("CORS_ORIGINS", "*"),
        "PUBLIC_URL": env("PUBLIC_URL", "http://127.0.0.1:5000"),
        # Emails: the store's name, and where its storefront's pages are (reset-password, ...).
        "STORE_NAME": env("STORE_NAME", "shop"),
        # Invoices (GET /orders/{id}/invoice): the seller's address (lines apart with newlines),
        # email and tax (VAT) number, printed under STORE_NAME.
        "STORE_ADDRESS": env("STORE_ADDRESS", ""),
        "STORE_EMAIL": env("STORE_EMAIL", ""),
        "STORE_TAX_ID": env("STORE_TAX_ID", ""),
        "STOREFRONT_URL": env("STOREFRONT_URL") or env("PUBLIC_URL", "http://127.0.0.1:5000"),
        # Auth
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=_env_int("JWT_ACCESS_MINUTES", 15)),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=_env_int("JWT_REFRESH_DAYS", 30)),
        "JWT_TOKEN_LOCATION": ["headers"],
        "JWT_ERROR_MESSAGE_KEY": "detail",
        "VERIFICATION_CODE_TTL": timedelta(hours=24),
        "PASSWORD_RESET_TTL": timedelta(hours=1),
        "LOGIN_LIMIT_PER_ACCOUNT": env("LOGIN_LIMIT_PER_ACCOUNT", "5 per 15 minutes"),
        "LOGIN_LIMIT_PER_IP": env("LOGIN_LIMIT_PER_IP", "30 per 15 minutes"),
        "ANON_WRITE_LIMIT_PER_IP": env("ANON_WRITE_LIMIT_PER_IP", "30 per hour"),
        # Verification codes and reset tokens emailed to one address per hour (then silence).
        "CODE_EMAILS_PER_HOUR": _env_int("CODE_EMAILS_PER_HOUR", 3),
        # Codes texted to a phone (auth.phone): their lifetime; texts asked for per number and
        # per client address, and wrong codes tried per number and per address.
        "PHONE_CODE_TTL": timedelta(minutes=10),
        "PHONE_CODE_LIMIT_PER_NUMBER": env(
            "PHONE_CODE_LIMIT_PER_NUMBER", "3 per 10 minutes;10 per day"
        ),
        "PHONE_CODE_LIMIT_PER_IP": env("PHONE_CODE_LIMIT_PER_IP", "10 per hour"),
        "PHONE_ATTEMPT_LIMIT_PER_NUMBER": env(
            "PHONE_ATTEMPT_LIMIT_PER_NUMBER", "5 per 10 minutes;20 per day"
        ),
        "PHONE_ATTEMPT_LIMIT_PER_IP": env("PHONE_ATTEMPT_LIMIT_PER_IP", "20 per hour"),
        # Reverse proxies in front of shop: client addresses (rate limits, audit) are then
        # taken from that many X-Forwarded-For hops; 0 trusts no such header. (PROXY_COUNT is
        # its earlier name, still read.)
        "TRUSTED_PROXIES": _env_int("TRUSTED_PROXIES", _env_int("PROXY_COUNT", 0)),
        # API-wide limits (shop.ratelimits): every /api request of a signed-in user counts
        # against RATE_LIMIT_USER, any other against RATE_LIMIT_ANON for its client address.
        "RATE_LIMIT_ANON": env("RATE_LIMIT_ANON", "300 per minute"),
        "RATE_LIMIT_USER": env("RATE_LIMIT_USER", "1200 per minute"),
        # Public catalog answers may be kept this many seconds by browsers and shared caches.
        "CATALOG_MAX_AGE": _env_int("CATALOG_MAX_AGE", 30),
        # Metrics (shop.metrics): GET /metrics answers scrapes from these addresses and CIDR
        # blocks, or with `Authorization: Bearer METRICS_TOKEN`; anyone else gets a 404. The
        # worker and the scheduler serve theirs on METRICS_PORT (unset: not at all). Requests
        # slower than SLOW_REQUEST_MS are logged with their slowest statements.
        "METRICS_ENABLED": _env_bool("METRICS_ENABLED", True),
        "METRICS_ALLOW_FROM": env("METRICS_ALLOW_FROM", "127.0.0.1"),
        "METRICS_TOKEN": env("METRICS_TOKEN") or None,
        "METRICS_PORT": _env_int("METRICS_PORT", 0) or None,
        "SLOW_REQUEST_MS": _env_int("SLOW_REQUEST_MS", 500),
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_KEY_PREFIX": "shop-limits",
        "CACHE_DEFAULT_TIMEOUT": 300,
        **({"CACHE_TYPE": env("CACHE_TYPE")} if env("CACHE_TYPE") else {}),
        "CACHE_KEY_PREFIX": "shop:",
        "CACHE_RESPONSES": _env_bool("CACHE_RESPONSES", True),
        # Behaviour (shop.tracking): product views, searches, cart and wishlist adds, purchases
        # and ratings recorded for the reports and recommendations; false records none.
        "TRACK_BEHAVIOUR": _env_bool("TRACK_BEHAVIOUR", True),
        "REDIS_TIMEOUT": float(env("REDIS_TIMEOUT", "0.5")),
        # Requests (an image upload may be larger: UPLOAD_MAX_BYTES)
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # Media (shop.media): `local` files under MEDIA_ROOT, served at /api/v1/media/, or `s3`
        # (S3_BUCKET at S3_ENDPOINT_URL or AWS, credentials from the usual AWS variables).
        # MEDIA_URL is what stands before a file's key in its url (default: shop.media).
        "MEDIA_STORAGE": env("MEDIA_STORAGE", "local"),
        "MEDIA_ROOT": env("MEDIA_ROOT") or str(Path(instance_path) / "media"),
        "MEDIA_URL": env("MEDIA_URL") or None,
        "S3_BUCKET": env("S3_BUCKET") or None,
        "S3_ENDPOINT_URL": env("S3_ENDPOINT_URL") or None,
        "S3_REGION": env("S3_REGION", "us-east-1"),
        # Seconds to connect and to read, per attempt (two attempts): a storage that does
        # not answer is a 503 in seconds, never a hung upload.
        "S3_TIMEOUT": float(env("S3_TIMEOUT", "3")),
        # Images (shop.imaging): an uploaded file's bytes, and its pixels (checked from the
        # header, before decoding: a small file may expand to gigabytes).
        "UPLOAD_MAX_BYTES": _env_int("UPLOAD_MAX_BYTES", 10 * 1024 * 1024),
        "IMAGE_MAX_PIXELS": _env_int("IMAGE_MAX_PIXELS", 40_000_000),
        "JSON_SORT_KEYS": False,
        # Database
        "SQLALCHEMY_ENGINE_OPTIONS": {},  # idle connections are pinged: db.PING_AFTER_IDLE
        # What a 503 (database unavailable) tells the client to wait before retrying.
        "RETRY_AFTER_SECONDS": _env_int("RETRY_AFTER_SECONDS", 5),
        # OpenAPI
        "API_TITLE": "shop",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        "OPENAPI_SWAGGER_UI_URL": "/docs/assets/swagger/",
        "OPENAPI_REDOC_PATH": "/redoc",
        "OPENAPI_REDOC_URL": "/docs/assets/redoc/redoc.standalone.js",
        # No badge from the public validator: /docs loads nothing from elsewhere (its CSP).
        "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
        # Jobs
        "RQ_QUEUES": ["default"],
        "JOB_RETRY_INTERVALS": [10, 60, 300],
        "SCHEDULER_INTERVAL": _env_int("SCHEDULER_INTERVAL", 5),
    }
    config.update(overrides or {})
    # Derived from REDIS_URL after the overrides: the cache and the rate limiter use Redis
    # when it is configured (rate limits fall back to memory while it is down), else memory.
    redis_url = config["REDIS_URL"]
    config["CACHE_REDIS_URL"] = config["CACHE_REDIS_URL"] or redis_url
    config.setdefault("CACHE_TYPE", "RedisCache" if redis_url else "SimpleCache")
    config.setdefault("RATELIMIT_STORAGE_URI", redis_url or "memory://")
    # Every Redis client of the web (cache, limiter, queues) gives up quickly: a hung Redis
    # is an outage (a cache miss, in-memory limits, a relay later), never a hung request.
    timeouts = {
        "socket_timeout": config["REDIS_TIMEOUT"],
        "socket_connect_timeout": config["REDIS_TIMEOUT"],
    }
    if config["CACHE_TYPE"] == "RedisCache":
        config.setdefault("CACHE_OPTIONS", timeouts)
    if config["RATELIMIT_STORAGE_URI"].startswith("redis"):
        config.setdefault("RATELIMIT_STORAGE_OPTIONS", timeouts)
    _check_metrics(config)
    _check_media(config)
    _check_payments(config)
    _check_sms(config)
    config["SQLALCHEMY_DATABASE_URI"] = _normalise_database_url(config["SQLALCHEMY_DATABASE_URI"])
    if config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # An unreachable server is an error in seconds, not a request hanging on connect.
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "connect_args": {"connect_timeout": 5},
            **config["SQLALCHEMY_ENGINE_OPTIONS"],
        }
    _check_replica(config)
    _refuse_unsafe(config)
    return config


def _normalise_database_url(url: str) -> str:
    # Heroku-style URLs say postgres://, which SQLAlchemy no longer accepts.
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    return url


def _check_replica(config: dict[str, Any]) -> None:
    if not config["DATABASE_REPLICA_URL"]:
        return
    url = config["DATABASE_REPLICA_URL"] = _normalise_database_url(config["DATABASE_REPLICA_URL"])
    if not all(u.startswith("postgresql") for u in (url, config["SQLALCHEMY_DATABASE_URI"])):
        raise ConfigError(
            "DATABASE_REPLICA_URL is a PostgreSQL replica of a PostgreSQL DATABASE_URL."
        )
    if not config["REDIS_URL"]:
        raise ConfigError("DATABASE_REPLICA_URL needs REDIS_URL (who wrote lately is kept there).")
    lag, sticky = config["REPLICA_MAX_LAG_SECONDS"], config["REPLICA_STICKY_SECONDS"]
    if not 0 < lag <= sticky:
        raise ConfigError(
            "REPLICA_MAX_LAG_SECONDS must be above 0 and at most REPLICA_STICKY_SECONDS "
            f"(else a writer may read its past), not {lag} and {sticky}."
        )


def _check_metrics(config: dict[str, Any]) -> None:
    allow_from = config["METRICS_ALLOW_FROM"]
    if isinstance(allow_from, str):
        try:
            config["METRICS_ALLOW_FROM"] = [
                ipaddress.ip_network(part.strip(), strict=False)
                for part in allow_from.split(",")
                if part.strip()
            ]
        except ValueError as error:
            raise ConfigError(f"METRICS_ALLOW_FROM: {error}") from None


def _check_media(config: dict[str, Any]) -> None:
    if config["MEDIA_STORAGE"] not in ("local", "s3"):
        raise ConfigError(f"MEDIA_STORAGE is local or s3, not {config['MEDIA_STORAGE']!r}.")
    if config["MEDIA_STORAGE"] == "s3" and not config["S3_BUCKET"]:
        raise ConfigError("MEDIA_STORAGE=s3 needs S3_BUCKET.")


def _check_payments(config: dict[str, Any]) -> None:
    if config["PAYMENT_PROVIDER"] not in ("manual", "stripe"):
        raise ConfigError(
            f"PAYMENT_PROVIDER is manual or stripe, not {config['PAYMENT_PROVIDER']!r}."
        )
    missing = [name for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET") if not config[name]]
    if config["PAYMENT_PROVIDER"] == "stripe" and missing:
        raise ConfigError(f"PAYMENT_PROVIDER=stripe needs {' and '.join(missing)}.")


def _check_sms(config: dict[str, Any]) -> None:
    if config["SMS_BACKEND"] not in ("log", "http"):
        raise ConfigError(f"SMS_BACKEND is log or http, not {config['SMS_BACKEND']!r}.")
    missing = [name for name in ("SMS_HTTP_URL", "SMS_HTTP_TOKEN") if not config[name]]
    if config["SMS_BACKEND"] == "http" and missing:
        raise ConfigError(f"SMS_BACKEND=http needs {' and '.join(missing)}.")


def _refuse_unsafe(config: dict[str, Any]) -> None:
    if config["SHOP_ENV"] != PRODUCTION:
        return
    weak = [
        name
        for name in ("SECRET_KEY", "JWT_SECRET_KEY")
        if config[name] == DEFAULT_SECRET or len(config[name]) < 32
    ]
    if weak:
        raise ConfigError(
            f"SHOP_ENV=production refuses default or short secrets: set {', '.join(weak)} "
            "to random strings of at least 32 characters."
        )
    if config["SMS_BACKEND"] == "http" and not config["SMS_HTTP_URL"].startswith("https://"):
        raise ConfigError("SHOP_ENV=production sends texts only to an https:// SMS_HTTP_URL.")
