"""Stripe, as the app talks to it: one `stripe.StripeClient` per app (STRIPE_SECRET_KEY, at
STRIPE_API_BASE when set, STRIPE_TIMEOUT to connect and to read, no retry inside a call: a
request waits one timeout at most, and a job is retried by its queue), amounts in a
currency's minor units, and which of the library's errors are worth trying again."""

from __future__ import annotations

from decimal import Decimal

import stripe
from flask import Flask, current_app

# Stripe's currencies without minor units, and those with three places (shop keeps two: their
# last digit is 0, as Stripe asks of them). https://docs.stripe.com/currencies
ZERO_DECIMAL = ("BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX",
                "VND", "VUV", "XAF", "XOF", "XPF")  # fmt: skip
THREE_DECIMAL = ("BHD", "JOD", "KWD", "OMR", "TND")
EXPONENTS = {**dict.fromkeys(ZERO_DECIMAL, 0), **dict.fromkeys(THREE_DECIMAL, 3)}


class NotConfigured(RuntimeError):
    """STRIPE_SECRET_KEY is not set (a refund job fails, and is retried once it is)."""


def init_app(app: Flask) -> None:
    config = app.config
    if not config["STRIPE_SECRET_KEY"]:
        return
    timeout = config["STRIPE_TIMEOUT"]
    base = {"api": config["STRIPE_API_BASE"]} if config["STRIPE_API_BASE"] else None
    app.extensions["stripe"] = stripe.StripeClient(
        config["STRIPE_SECRET_KEY"],
        base_addresses=base,  # type: ignore[arg-type]
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=(timeout, timeout)),
    )


def client() -> stripe.StripeClient:
    found: stripe.StripeClient | None = current_app.extensions.get("stripe")
    if found is None:
        raise NotConfigured("STRIPE_SECRET_KEY is not set.")
    return found


def _exponent(currency: str) -> int:
    return EXPONENTS.get(currency.upper(), 2)


def minor_units(amount: Decimal, currency: str) -> int:
    """19.99 USD -> 1999, exactly (Decimal arithmetic, never a float); ValueError for an
    amount the currency cannot express (cents of a yen)."""
    scaled = amount.scaleb(_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} has more places than the currency.")
    return int(scaled)


def from_minor_units(units: int, currency: str) -> Decimal:
    """1999 USD -> Decimal("19.99"), with shop's two places."""
    return Decimal(units).scaleb(-_exponent(currency)).quantize(Decimal("0.01"))


def is_transient(error: stripe.StripeError) -> bool:
    """Whether the same call may succeed later: the provider unreachable, slow, failing or
    busy (5xx, 409, 429), or shop's credentials refused (fixed by an operator). A refusal of
    the request itself (a card, an amount, a refunded charge) is not."""
    return not isinstance(
        error, stripe.InvalidRequestError | stripe.CardError | stripe.IdempotencyError
    )
