"""Tokens: access and refresh pairs, rotation with whole-family revocation on reuse, logout,
and the lookup that makes every request's token count only while its user may act."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, cast

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from jwt import PyJWTError
from sqlalchemy import CursorResult, delete, exists, select, update

from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import RefreshToken, RevokedToken, User, UserToken
from shop.db import db, unit_of_work, utcnow
from shop.errors import Unauthorized, Unprocessable


class Tokens(TypedDict):
    """What TokenSchema dumps."""

    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


class Login(Tokens):
    """What LoginResponseSchema dumps."""

    user: User


def issue_tokens(user: User, family: str | None = None) -> Login:
    """A new access + refresh pair; the refresh token joins `family` (a new one at login)."""
    claims = {"role": user.role, "ver": user.token_version}
    access = create_access_token(identity=str(user.id), additional_claims=claims)
    family = family or str(uuid.uuid4())
    refresh = create_refresh_token(
        identity=str(user.id), additional_claims={**claims, "fam": family}
    )
    payload = decode_token(refresh)
    db.session.add(
        RefreshToken(
            jti=payload["jti"],
            user_id=user.id,
            family=family,
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        )
    )
    expires: timedelta = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": int(expires.total_seconds()),
        "user": user,
    }


def _revoke_family(family: str) -> None:
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family == family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def revoke_all(user: User) -> None:
    """Every token issued to `user` so far stops working (password change, deactivation)."""
    user.token_version += 1
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def refresh(user: User, payload: dict[str, Any]) -> Tokens:
    """Rotate: revoke the presented refresh token and issue a new pair in its family.

    Presenting an already rotated token means it leaked: the whole family is revoked.
    """
    reused = False
    with unit_of_work():
        row = db.session.get(RefreshToken, payload["jti"], with_for_update=True)
        if row is None or row.user_id != user.id:
            raise Unauthorized("The refresh token is not valid.")
        if row.revoked_at is not None:
            _revoke_family(row.family)
            reused = True
        else:
            row.revoked_at = utcnow()
            tokens = issue_tokens(user, family=row.family)
    if reused:
        raise Unauthorized("The refresh token was already used; please log in again.")
    return {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "token_type": tokens["token_type"],
        "expires_in": tokens["expires_in"],
    }


def logout(user: User, access_payload: dict[str, Any], refresh_token: str | None) -> None:
    family = None
    if refresh_token:
        try:
            refresh_payload = decode_token(refresh_token, allow_expired=True)
        except PyJWTError as error:
            raise Unprocessable(
                "Not a refresh token.", errors={"refresh_token": ["Not a valid token."]}
            ) from error
        if refresh_payload.get("type") != "refresh" or refresh_payload.get("sub") != str(user.id):
            raise Unprocessable(
                "Not a refresh token of this user.",
                errors={"refresh_token": ["Not a refresh token of this user."]},
            )
        family = refresh_payload.get("fam")
    with unit_of_work():
        db.session.add(
            RevokedToken(
                jti=access_payload["jti"],
                expires_at=datetime.fromtimestamp(access_payload["exp"], UTC),
            )
        )
        if family:
            _revoke_family(family)
        record(Action.AUTH_LOGOUT, actor=user, target_type=Target.USER, target_id=user.id)


def is_token_usable(user: User | None, payload: dict[str, Any], revoked: bool) -> bool:
    return (
        user is not None
        and user.is_active
        and not revoked
        and payload.get("ver") == user.token_version
    )


def load_token_user(payload: dict[str, Any]) -> User | None:
    """The user behind a token, or None when the token no longer counts. One query."""
    try:
        user_id = int(payload["sub"])
    except (KeyError, TypeError, ValueError):
        return None
    revoked = exists().where(RevokedToken.jti == payload.get("jti", ""))
    row = db.session.execute(select(User, revoked).where(User.id == user_id)).first()
    if row is None:
        return None
    user, is_revoked = row
    return user if is_token_usable(user, payload, is_revoked) else None


def purge_expired_tokens() -> dict[str, int]:
    """The `purge-expired-tokens` job: revocations, refresh tokens and codes that have
    expired anyway."""
    now = utcnow()
    counts = {}
    with unit_of_work() as session:
        for name, model in (
            ("revoked_tokens", RevokedToken),
            ("refresh_tokens", RefreshToken),
            ("user_tokens", UserToken),
        ):
            result = session.execute(delete(model).where(model.expires_at < now))
            counts[name] = cast(CursorResult[Any], result).rowcount
    return counts
