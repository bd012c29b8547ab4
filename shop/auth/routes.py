"""Auth and user administration API."""

from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView
from flask_jwt_extended import current_user, get_jwt

from shop.api import Blueprint
from shop.auth import accounts, personal_data, phone, tokens, two_factor
from shop.auth.models import PhonePurpose, User
from shop.auth.phone_routes import texts_per_ip, texts_per_number, tries_per_ip, tries_per_number
from shop.auth.schemas import (
    ChangePasswordSchema,
    EmailOnlySchema,
    EraseAccountSchema,
    LoginResponseSchema,
    LoginSchema,
    LogoutSchema,
    PasswordResetConfirmSchema,
    PasswordResetSchema,
    PersonalDataSchema,
    ProfileUpdate,
    ProfileUpdateSchema,
    RecoveryCodesSchema,
    RegisterSchema,
    Registration,
    SecondStepSchema,
    SessionSchema,
    TokensAndUserSchema,
    TokenSchema,
    TokenVerdictSchema,
    TokenVerifySchema,
    TwoFactorCodeSchema,
    TwoFactorDisableSchema,
    TwoFactorSetupSchema,
    UserAdminUpdate,
    UserAdminUpdateSchema,
    UserQueryArgsSchema,
    UserSchema,
    VerifyEmailSchema,
)
from shop.db import Page
from shop.extensions import limiter
from shop.schemas import page_of
from shop.security import Role

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Accounts and users")


def _login_email() -> str:
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return email.strip().lower()[:254] if isinstance(email, str) else ""


def _failed(response: Any) -> bool:
    return bool(response.status_code == 401)


def _login_limit_per_account() -> str:
    return str(current_app.config["LOGIN_LIMIT_PER_ACCOUNT"])


def _login_limit_per_ip() -> str:
    return str(current_app.config["LOGIN_LIMIT_PER_IP"])


def _anon_write_limit() -> str:
    return str(current_app.config["ANON_WRITE_LIMIT_PER_IP"])


anonymous_write_limit = limiter.shared_limit(_anon_write_limit, scope="anonymous-writes")


@blp.route("/auth/register")
class Register(MethodView):
    decorators = [anonymous_write_limit]

    @blp.arguments(RegisterSchema)
    @blp.errors(409, 429)
    @blp.response(201, UserSchema, headers={"Location": {"schema": {"type": "string"}}})
    def post(self, data: Registration) -> tuple[User, dict[str, str]]:
        """Create a customer account and email a verification code

        Anyone (no token); the account is a customer. The email is unique case-insensitively
        (409 if taken); the password has at least 8 characters, is not all digits and is not
        the email (422). Writes without a token are limited per client address (429,
        ANON_WRITE_LIMIT_PER_IP). Location: /auth/me."""
        user = accounts.register(data)
        return user, {"Location": "/api/v1/auth/me"}


@blp.route("/auth/verify-email")
class VerifyEmail(MethodView):
    decorators = [anonymous_write_limit]

    @blp.arguments(VerifyEmailSchema)
    @blp.errors(400, 429)
    @blp.response(204)
    def post(self, data: dict[str, Any]) -> None:
        """Confirm the email address with the code that was sent

        Anyone (no token): the email and the code of the verification email. A wrong or
        expired code is a 400 (ask for another with POST /auth/verify-email/resend); limited
        per client address (429)."""
        accounts.verify_email(data["email"], data["code"])


@blp.route("/auth/verify-email/resend")
class ResendVerification(MethodView):
    decorators = [anonymous_write_limit]

    @blp.arguments(EmailOnlySchema)
    @blp.errors(429)
    @blp.response(202)
    def post(self, data: dict[str, Any]) -> None:
        """Send a new verification code (always 202, whether or not the email is known)

        Anyone (no token). The earlier code stops working. The answer is the same for an
        unknown or already verified email, so that it reveals no account; limited per client
        address (429)."""
        accounts.resend_verification(data["email"])


@blp.route("/auth/login")
class Login(MethodView):
    decorators = [
        limiter.limit(
            _login_limit_per_account,
            key_func=_login_email,
            deduct_when=_failed,
            scope="login-account",
        ),
        limiter.limit(_login_limit_per_ip, deduct_when=_failed, scope="login-ip"),
    ]

    @blp.arguments(LoginSchema)
    @blp.errors(401, 429)
    @blp.response(200, LoginResponseSchema)
    def post(self, data: dict[str, Any]) -> tokens.Login | two_factor.Challenge:
        """Exchange email and password for an access and a refresh token; with two-factor
        on, for the token of the second step instead (`mfa_required`, POST /auth/login/2fa)

        Anyone (no token). An unknown email and a wrong password are the same 401 (and an
        `auth.login_failed` audit entry); repeated failures are a 429, per account
        (LOGIN_LIMIT_PER_ACCOUNT) and per client address (LOGIN_LIMIT_PER_IP). A deactivated
        account is a 401 too."""
        return accounts.login(data["email"], data["password"])


@blp.route("/auth/login/2fa")
class LoginSecondStep(MethodView):
    # Wrong codes count against the address: with the login step's own five attempts, a
    # six-digit code cannot be guessed.
    decorators = [
        limiter.limit(_login_limit_per_ip, deduct_when=_failed, scope="login-2fa-ip"),
    ]

    @blp.arguments(SecondStepSchema)
    @blp.errors(401, 429)
    @blp.response(200, TokensAndUserSchema)
    def post(self, data: dict[str, Any]) -> tokens.Login:
        """A login's second step: the code of the authenticator app (or a recovery code) for
        the `mfa_token` the first answered; five wrong ones spend that token

        Anyone holding an `mfa_token` (valid 5 minutes; no bearer token). A wrong code, a
        spent or expired `mfa_token` is a 401; wrong codes also count against the client
        address (429), so a six-digit code cannot be guessed. Answers the tokens and the user,
        as POST /auth/login does without two-factor."""
        return two_factor.finish_login(
            data["mfa_token"], data.get("code"), data.get("recovery_code")
        )


@blp.route("/auth/token/verify")
class TokenVerify(MethodView):
    decorators = [anonymous_write_limit]

    @blp.arguments(TokenVerifySchema)
    @blp.errors(429)
    @blp.response(200, TokenVerdictSchema)
    def post(self, data: dict[str, str]) -> dict[str, Any]:
        """Whether a token would be accepted now, its type, expiry and user (for a gateway
        or another service; a token that is not shop's answers valid false, all else null)

        Anyone (no bearer token: the token to judge is in the body). A revoked, expired or
        deactivated user's token is `valid: false`; the answer is a 200 whatever the token.
        Limited per client address (429)."""
        return tokens.verdict(data["token"])


@blp.route("/auth/sessions")
class Sessions(MethodView):
    @blp.auth_required()
    @blp.response(200, SessionSchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """Your logins still standing, newest first (`current`: this one)"""
        return tokens.list_sessions(current_user, get_jwt().get("fam"))


@blp.route("/auth/sessions/<string:session_id>")
class SessionById(MethodView):
    @blp.auth_required()
    @blp.errors(404)
    @blp.response(204)
    def delete(self, session_id: str) -> None:
        """End one of your logins: its refresh token at once, its access tokens at their
        next request"""
        tokens.revoke_session(current_user, session_id)


@blp.route("/auth/2fa/setup")
class TwoFactorSetup(MethodView):
    @blp.auth_required()
    @blp.errors(409)
    @blp.response(200, TwoFactorSetupSchema)
    def post(self) -> dict[str, str]:
        """A new TOTP secret and its otpauth:// URI (also GET /auth/2fa/qr.png); not in force
        until POST /auth/2fa/enable takes a code from it"""
        return two_factor.set_up(current_user)


@blp.route("/auth/2fa/qr.png")
class TwoFactorQr(MethodView):
    @blp.auth_required()
    @blp.errors(404, 409)
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="image/png")
    def get(self) -> Response:
        """The secret set up, as a QR code for an authenticator app (until two-factor is
        enabled: then 409, the secret is not shown again)"""
        png = two_factor.qr_png(current_user)
        return Response(png, mimetype="image/png", headers={"Cache-Control": "no-store"})


@blp.route("/auth/2fa/enable")
class TwoFactorEnable(MethodView):
    @blp.auth_required()
    @blp.arguments(TwoFactorCodeSchema)
    @blp.errors(400, 409)
    @blp.response(200, RecoveryCodesSchema)
    def post(self, data: dict[str, Any]) -> dict[str, list[str]]:
        """Turn two-factor on with a code from the secret set up; answers ten single-use
        recovery codes, shown this once"""
        return two_factor.enable(current_user, data["code"])


@blp.route("/auth/2fa/disable")
class TwoFactorDisable(MethodView):
    @blp.auth_required()
    @blp.arguments(TwoFactorDisableSchema)
    @blp.errors(400, 401, 409)
    @blp.response(204)
    def post(self, data: dict[str, Any]) -> None:
        """Turn two-factor off: the password and a code (or a recovery code)"""
        two_factor.disable(current_user, data["password"], data["code"])


@blp.route("/auth/refresh")
class Refresh(MethodView):
    @blp.auth_required(refresh=True)
    @blp.response(200, TokenSchema)
    def post(self) -> tokens.Tokens:
        """Rotate the refresh token (send it as the bearer token) for a new pair"""
        return tokens.refresh(current_user, get_jwt())


@blp.route("/auth/logout")
class Logout(MethodView):
    @blp.auth_required()
    @blp.arguments(LogoutSchema(), required=False)
    @blp.response(204)
    def post(self, data: dict[str, Any]) -> None:
        """Revoke the access token and, if given, the refresh token's whole session"""
        tokens.logout(current_user, get_jwt(), data.get("refresh_token"))


@blp.route("/auth/me")
class Me(MethodView):
    @blp.auth_required()
    @blp.response(200, UserSchema)
    def get(self) -> User:
        """The signed-in user's profile"""
        return current_user  # type: ignore[no-any-return]

    @blp.auth_required()
    @blp.arguments(ProfileUpdateSchema, required=False)
    @blp.response(200, UserSchema)
    def patch(self, data: ProfileUpdate) -> User:
        """Change names and phone"""
        return accounts.update_profile(current_user, data)

    @blp.auth_required()
    @blp.arguments(EraseAccountSchema)
    @blp.errors(401, 409)
    @blp.response(204)
    def delete(self, data: dict[str, Any]) -> None:
        """Erase your account with your password (401 if wrong): names, email, phone,
        addresses, wishlist, cart, sessions and two-factor go, every token stops working at
        once, the email may register again; orders stay, anonymised, for accounting. The
        last active admin cannot (409)"""
        personal_data.erase_account(current_user, data["password"])


@blp.route("/auth/me/export")
class MyData(MethodView):
    @blp.auth_required()
    @blp.response(200, PersonalDataSchema)
    def get(self) -> dict[str, Any]:
        """Everything stored about you, as JSON: profile, addresses, cart, orders with their
        payments, refunds, returns and shipments, wishlist, reviews, sessions, two-factor
        status, codes sent, your events and the audit entries about you (no secret, hash or
        token)"""
        return personal_data.export_data(current_user)


@blp.route("/auth/change-password")
class ChangePassword(MethodView):
    @blp.auth_required()
    @blp.arguments(ChangePasswordSchema)
    @blp.response(204)
    def post(self, data: dict[str, Any]) -> None:
        """Change the password; every token issued before stops working"""
        accounts.change_password(current_user, data["current_password"], data["new_password"])


@blp.route("/auth/password-reset")
class PasswordReset(MethodView):
    decorators = [anonymous_write_limit, texts_per_number, texts_per_ip]

    @blp.arguments(PasswordResetSchema)
    @blp.errors(429)
    @blp.response(202)
    def post(self, data: dict[str, Any]) -> None:
        """Email a single-use reset token, or text a six-digit code (valid 10 minutes) to a
        verified phone (always 202, whether or not the email or number is known)

        Anyone (no token): `{email}` or `{phone}`. The answer reveals no account. Limited per
        client address and, for texts, per number (429); confirm with POST
        /auth/password-reset/confirm."""
        if "phone" in data:
            phone.request_code(data["phone"], PhonePurpose.RESET_PASSWORD)
        else:
            accounts.request_password_reset(data["email"])


@blp.route("/auth/password-reset/confirm")
class PasswordResetConfirm(MethodView):
    decorators = [anonymous_write_limit, tries_per_number, tries_per_ip]

    @blp.arguments(PasswordResetConfirmSchema)
    @blp.errors(400, 429)
    @blp.response(204)
    def post(self, data: dict[str, Any]) -> None:
        """Set a new password with the emailed reset token, or with the phone and the code
        texted to it; every token issued before stops working

        Anyone (no token): `{token, new_password}` or `{phone, code, new_password}`. A wrong,
        used or expired token or code is a 400 (a code allows 5 attempts); a weak password is
        a 422; tries are limited per client address and per number (429)."""
        if "token" in data:
            accounts.confirm_password_reset(data["token"], data["new_password"])
        else:
            phone.reset_password(data["phone"], data["code"], data["new_password"])


@blp.route("/users")
class Users(MethodView):
    @blp.auth_required(Role.ADMIN)
    @blp.arguments(UserQueryArgsSchema, location="query")
    @blp.response(200, page_of(UserSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """List users"""
        return accounts.list_users(**args)


@blp.route("/users/<int:user_id>")
class UserById(MethodView):
    @blp.auth_required(Role.ADMIN)
    @blp.errors(404)
    @blp.response(200, UserSchema)
    def get(self, user_id: int) -> User:
        """Get a user"""
        return accounts.get_user(user_id)

    @blp.auth_required(Role.ADMIN)
    @blp.arguments(UserAdminUpdateSchema, required=False)
    @blp.errors(404, 409)
    @blp.response(200, UserSchema)
    def patch(self, data: UserAdminUpdate, user_id: int) -> User:
        """Change a user's role or deactivate them (their tokens stop working)"""
        return accounts.admin_update_user(current_user, user_id, data)
