"""Tokens: access and refresh pairs, rotation with whole-family revocation on reuse, logout,
sessions (one per login: its family), and the lookup that makes every request's token count
only while its user may act and its session stands."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, cast

from flask import current_app, has_request_context, request
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from jwt import PyJWTError
from sqlalchemy import CursorResult, delete, exists, or_, select, update

from shop import tracking
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import LoginSession, RefreshToken, RevokedToken, User, UserToken
from shop.db import db, unit_of_work, utcnow
from shop.errors import NotFound, Unauthorized, Unprocessable


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
    """A new access + refresh pair of `family`; without one (a login), a new session: its
    family, with the request's address and user agent. Both tokens carry the family."""
    if family is None:
        family = str(uuid.uuid4())
        db.session.add(LoginSession(id=family, user_id=user.id, **_client()))
        anonymous = tracking.session_id()
        if anonymous is not None:  # what the client did anonymously becomes the user's
            tracking.record_after_commit(tracking.Fact.LOGIN, user_id=user.id, session_id=anonymous)
    claims = {"role": user.role, "ver": user.token_version, "fam": family}
    access = create_access_token(identity=str(user.id), additional_claims=claims)
    refresh = create_refresh_token(identity=str(user.id), additional_claims=claims)
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


def _client() -> dict[str, str]:
    if not has_request_context():
        return {}
    return {
        "ip": (request.remote_addr or "")[:45],
        "user_agent": request.user_agent.string[:300],
    }


def _revoke_family(family: str) -> None:
    """The session ends: its refresh tokens at once, its access tokens at their next use."""
    now = utcnow()
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family == family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.id == family, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def revoke_all(user: User) -> None:
    """Every token issued to `user` so far stops working (password change, deactivation)."""
    user.token_version += 1
    now = utcnow()
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def list_sessions(user: User, current_family: str | None) -> list[dict[str, Any]]:
    """The user's sessions still standing (not revoked, refreshed within the refresh
    tokens' lifetime), newest first; `current`: the one the request's token belongs to."""
    since = utcnow() - current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]
    rows = db.session.scalars(
        select(LoginSession)
        .where(
            LoginSession.user_id == user.id,
            LoginSession.revoked_at.is_(None),
            LoginSession.last_used_at > since,
        )
        .order_by(LoginSession.created_at.desc(), LoginSession.id)
    )
    return [
        {"id": s.id, "created_at": s.created_at, "last_used_at": s.last_used_at, "ip": s.ip,
         "user_agent": s.user_agent, "current": s.id == current_family}
        for s in rows
    ]  # fmt: skip


def revoke_session(user: User, session_id: str) -> None:
    """End one of the user's logins (another's, or one already ended: 404). Its refresh
    tokens first, then the session: the order a refresh locks them in."""
    with unit_of_work():
        now = utcnow()
        db.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.family == session_id,
                RefreshToken.user_id == user.id,
                RefreshToken.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        ended = db.session.execute(
            update(LoginSession)
            .where(
                LoginSession.id == session_id,
                LoginSession.user_id == user.id,
                LoginSession.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        if cast(CursorResult[Any], ended).rowcount == 0:
            raise NotFound("No such session.")
        record(Action.AUTH_SESSION_REVOKED, actor=user, target_type=Target.USER,
               target_id=user.id, changes={"session": session_id})  # fmt: skip


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
            db.session.execute(
                update(LoginSession)
                .where(LoginSession.id == row.family)
                .values(last_used_at=row.revoked_at)
            )
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
    revoked = or_(
        exists().where(RevokedToken.jti == payload.get("jti", "")),
        exists().where(
            LoginSession.id == payload.get("fam", ""), LoginSession.revoked_at.is_not(None)
        ),
    )
    row = db.session.execute(select(User, revoked).where(User.id == user_id)).first()
    if row is None:
        return None
    user, is_revoked = row
    return user if is_token_usable(user, payload, is_revoked) else None


def verdict(token: str) -> dict[str, Any]:
    """Whether `token` would be accepted now (signature, expiry, its user active, not
    revoked, its session standing; a refresh token also not rotated yet), its type, expiry
    and user; a token that is not one of shop's: all null."""
    try:
        payload = decode_token(token)
    except Exception:
        return {"valid": False, "type": None, "exp": None, "user_id": None}
    kind = payload.get("type")
    valid = load_token_user(payload) is not None
    if valid and kind == "refresh":
        row = db.session.get(RefreshToken, payload.get("jti", ""))
        valid = row is not None and row.revoked_at is None
    try:
        user_id: int | None = int(payload["sub"])
    except (KeyError, TypeError, ValueError):
        user_id = None
    return {
        "valid": valid,
        "type": kind if kind in ("access", "refresh") else None,
        "exp": datetime.fromtimestamp(payload["exp"], UTC) if "exp" in payload else None,
        "user_id": user_id,
    }


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
        # A session outlives its refresh tokens by nothing; a revoked one is kept as long.
        ended = now - current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]
        result = session.execute(delete(LoginSession).where(LoginSession.last_used_at < ended))
        counts["sessions"] = cast(CursorResult[Any], result).rowcount
    return counts
