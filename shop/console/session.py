"""The console's sign-in: a signed cookie (itsdangerous, SECRET_KEY) holding the login's session
family, the user's token version and a CSRF token; Secure, HttpOnly, SameSite=Strict.

Signing in goes through auth.accounts.login (and auth.two_factor.finish_login), so the
password check, the lockout-free failure audit, the 2FA step and the login session are the
API's; every request looks the user up through auth.tokens.load_token_user, so a revoked
session, a password change (token_version) or a deactivation ends the console's too.
Signing out revokes the family (auth.tokens.revoke_session). The CSRF token exists before
sign-in (the login form has one too) and is replaced at sign-in."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_jwt_extended import decode_token
from itsdangerous import BadSignature, URLSafeTimedSerializer

from shop.auth import tokens
from shop.auth.models import User
from shop.auth.tokens import Login
from shop.security import Role

COOKIE = "shop_console"
SALT = "shop.console.session"
CSRF_FIELD = "csrf_token"
SESSION_TTL = timedelta(hours=8)


def _signer(app: Flask) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=SALT)


def state() -> dict[str, Any]:
    """The request's cookie payload ({} without a valid one), read once per request."""
    if "console_state" not in g:
        raw = request.cookies.get(COOKIE)
        payload: dict[str, Any] = {}
        if raw:
            try:
                payload = _signer(current_app).loads(raw, max_age=int(SESSION_TTL.total_seconds()))
            except BadSignature:
                payload = {}
        g.console_state = payload if isinstance(payload, dict) else {}
    return g.console_state  # type: ignore[no-any-return]


def csrf_token() -> str:
    """This browser's CSRF token, made (and set as a cookie by `save`) when it has none."""
    current = state()
    if not isinstance(current.get("csrf"), str):
        current["csrf"] = secrets.token_urlsafe(32)
        g.console_dirty = True
    return str(current["csrf"])


def csrf_ok() -> bool:
    sent = request.form.get(CSRF_FIELD, "")
    known = state().get("csrf")
    return isinstance(known, str) and bool(sent) and hmac.compare_digest(sent, known)


def current_user() -> User | None:
    """The signed-in user while their login session stands (any role; callers check it)."""
    if "console_user" not in g:
        current = state()
        user = None
        if isinstance(current.get("uid"), int):
            user = tokens.load_token_user(
                {"sub": str(current["uid"]), "fam": current.get("fam"), "ver": current.get("ver")}
            )
        g.console_user = user
    return g.console_user  # type: ignore[no-any-return]


def is_staff(user: User) -> bool:
    return user.has_role(Role.STAFF)


def begin(login: Login) -> None:
    """Keep a finished login (its family and the user's token version) and a fresh CSRF token."""
    claims = decode_token(login["access_token"])
    g.console_state = {
        "uid": login["user"].id,
        "fam": claims["fam"],
        "ver": claims["ver"],
        "csrf": secrets.token_urlsafe(32),
    }
    g.console_user = login["user"]
    g.console_dirty = True


def end_family(login: Login) -> None:
    """Revoke the login session a refused (non-staff) sign-in opened."""
    tokens.revoke_session(login["user"], decode_token(login["access_token"])["fam"])


def end() -> None:
    """Sign out: the family is revoked, the cookie keeps only a new CSRF token."""
    user, family = current_user(), state().get("fam")
    if user is not None and isinstance(family, str):
        tokens.revoke_session(user, family)
    g.console_state = {"csrf": secrets.token_urlsafe(32)}
    g.console_user = None
    g.console_dirty = True


def save(response: Response) -> Response:
    """Write the cookie when this request changed it."""
    if g.get("console_dirty"):
        response.set_cookie(
            COOKIE,
            _signer(current_app).dumps(g.console_state),
            max_age=int(SESSION_TTL.total_seconds()),
            path="/admin",
            secure=current_app.config["CONSOLE_COOKIE_SECURE"],
            httponly=True,
            samesite="Strict",
        )
    return response
