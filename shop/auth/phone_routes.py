"""Phone codes API: verifying the profile's phone, logging in with a texted code; and the
limits on texts asked for and codes tried, per number and per client address (also on the
password reset by phone, in auth.routes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import Blueprint
from shop.auth import phone, tokens, two_factor
from shop.auth.models import PhonePurpose
from shop.auth.phone_schemas import PhoneCodeSchema, PhoneLoginSchema, PhoneOnlySchema, as_e164
from shop.auth.schemas import LoginResponseSchema
from shop.extensions import limiter

blp = Blueprint("phone", __name__, url_prefix="/api/v1", description="Phone codes")


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _body_number() -> str:
    return as_e164(_body().get("phone")) or ""


def _not_by_phone() -> bool:
    """Exempt from the per-number limits: a body without a valid number (a 422, or a
    password reset by email)."""
    return not _body_number()


def _by_email_or_token() -> bool:
    """Exempt from the per-address limits: a password reset by email (its own limits)."""
    body = _body()
    return "email" in body or "token" in body


def _user_number() -> str:
    # Below auth_required: the user is loaded. One without a phone gets a 409 of their own.
    return str(current_user.phone or f"user {current_user.id}")


def _failed(response: Any) -> bool:
    return bool(response.status_code in (400, 401))


def _config(name: str) -> Callable[[], str]:
    """A limit read from the settings at each request (as auth.routes' login limits are)."""
    return lambda: str(current_app.config[name])


# Texts asked for: one bucket per number and one per address, whichever endpoint asks.
TEXTS_PER_NUMBER, TEXTS_PER_IP = "phone-texts-number", "phone-texts-ip"
texts_per_number = limiter.shared_limit(
    _config("PHONE_CODE_LIMIT_PER_NUMBER"), scope=TEXTS_PER_NUMBER, key_func=_body_number,
    exempt_when=_not_by_phone,
)  # fmt: skip
texts_per_users_number = limiter.shared_limit(
    _config("PHONE_CODE_LIMIT_PER_NUMBER"), scope=TEXTS_PER_NUMBER, key_func=_user_number
)
texts_per_ip = limiter.shared_limit(
    _config("PHONE_CODE_LIMIT_PER_IP"), scope=TEXTS_PER_IP, exempt_when=_by_email_or_token
)
# Wrong codes (and wrong numbers) tried: the same, counted only when they fail.
TRIES_PER_NUMBER, TRIES_PER_IP = "phone-tries-number", "phone-tries-ip"
tries_per_number = limiter.shared_limit(
    _config("PHONE_ATTEMPT_LIMIT_PER_NUMBER"), scope=TRIES_PER_NUMBER, key_func=_body_number,
    exempt_when=_not_by_phone, deduct_when=_failed,
)  # fmt: skip
tries_per_users_number = limiter.shared_limit(
    _config("PHONE_ATTEMPT_LIMIT_PER_NUMBER"), scope=TRIES_PER_NUMBER, key_func=_user_number,
    deduct_when=_failed,
)  # fmt: skip
tries_per_ip = limiter.shared_limit(
    _config("PHONE_ATTEMPT_LIMIT_PER_IP"), scope=TRIES_PER_IP, exempt_when=_by_email_or_token,
    deduct_when=_failed,
)  # fmt: skip


@blp.route("/auth/phone/verify-request")
class PhoneVerifyRequest(MethodView):
    decorators = [texts_per_ip]

    @blp.auth_required()
    @texts_per_users_number
    @blp.errors(409, 429)
    @blp.response(202)
    def post(self) -> None:
        """Text a six-digit code (valid 10 minutes) to the profile's phone, to verify it (409
        without a phone, or when it is verified already)"""
        phone.request_verification(current_user)


@blp.route("/auth/phone/verify")
class PhoneVerify(MethodView):
    decorators = [tries_per_ip]

    @blp.auth_required()
    @tries_per_users_number
    @blp.arguments(PhoneCodeSchema)
    @blp.errors(400, 409, 429)
    @blp.response(204)
    def post(self, data: dict[str, str]) -> None:
        """Verify the profile's phone with the code texted to it (400 wrong or expired: five
        wrong codes spend it; 409 without a phone, or when it is verified already)"""
        phone.verify(current_user, data["code"])


@blp.route("/auth/otp/request")
class OtpRequest(MethodView):
    decorators = [texts_per_number, texts_per_ip]

    @blp.arguments(PhoneOnlySchema)
    @blp.errors(429)
    @blp.response(202)
    def post(self, data: dict[str, str]) -> None:
        """Text a login code to a verified phone (always 202, whether or not the number is
        an account's)

        Anyone (no token). The six-digit code is valid 10 minutes; log in with it at POST
        /auth/otp/login. Texts are limited per number and per client address (429)."""
        phone.request_code(data["phone"], PhonePurpose.LOGIN)


@blp.route("/auth/otp/login")
class OtpLogin(MethodView):
    decorators = [tries_per_number, tries_per_ip]

    @blp.arguments(PhoneLoginSchema)
    @blp.errors(401, 429)
    @blp.response(200, LoginResponseSchema)
    def post(self, data: dict[str, str]) -> tokens.Login | two_factor.Challenge:
        """Exchange a verified phone and the code texted to it for the tokens, as POST
        /auth/login does (with two-factor on: `mfa_required`, then POST /auth/login/2fa)

        Anyone (no token). A wrong or expired code, or a number that is not an account's
        verified phone, is the same 401; a code allows 5 attempts, and tries are limited per
        number and per client address (429)."""
        return phone.login(data["phone"], data["code"])
