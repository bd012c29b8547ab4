"""Accounts: registration, verification, login and token rotation, passwords, user admin."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from jwt import PyJWTError
from sqlalchemy import CursorResult, delete, exists, func, select, update

from shop import mail
from shop.audit.services import diff, record
from shop.auth.models import RefreshToken, RevokedToken, TokenPurpose, User, UserToken
from shop.caching import REPORTS, invalidate
from shop.db import Page, paginate, unit_of_work, utcnow
from shop.errors import BadRequest, Conflict, NotFound, Unauthorized, Unprocessable
from shop.extensions import db
from shop.security import (
    PASSWORD_MIN_LENGTH,
    Role,
    burn_password_check,
    digest,
    hash_password,
    new_code,
    new_token,
    password_needs_rehash,
    verify_password,
)

LOGIN_FAILED = "Invalid email or password."
MAX_CODE_ATTEMPTS = 5
PROFILE_FIELDS = ("first_name", "last_name", "phone")


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def check_password_policy(password: str, email: str, field: str = "password") -> None:
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"Must be at least {PASSWORD_MIN_LENGTH} characters.")
    if password.isdigit():
        problems.append("Must not be all digits.")
    if password.strip().lower() == email.strip().lower():
        problems.append("Must not be the email address.")
    if problems:
        raise Unprocessable("The password is too weak.", errors={field: problems})


def _issue_code(user: User, purpose: TokenPurpose, secret: str, ttl: timedelta) -> None:
    # A new code or token replaces any earlier unused one for the same purpose.
    db.session.execute(
        update(UserToken)
        .where(
            UserToken.user_id == user.id,
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    db.session.add(
        UserToken(
            user_id=user.id, purpose=purpose, digest=digest(secret), expires_at=utcnow() + ttl
        )
    )


def _send_verification(user: User) -> None:
    code = new_code()
    ttl = current_app.config["VERIFICATION_CODE_TTL"]
    _issue_code(user, TokenPurpose.VERIFY_EMAIL, code, ttl)
    mail.queue_email(
        user.email, "verify_email", user=user, code=code, hours=ttl // timedelta(hours=1)
    )


def register(data: dict[str, Any]) -> User:
    email = data["email"].strip()
    check_password_policy(data["password"], email)
    with unit_of_work():
        if find_by_email(email):
            raise Conflict("An account with this email already exists.")
        user = User(
            email=email,
            password_hash=hash_password(data["password"]),
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            phone=data.get("phone", ""),
        )
        db.session.add(user)
        db.session.flush()
        _send_verification(user)
        record("auth.register", actor=user, target_type="user", target_id=user.id)
        invalidate(REPORTS)
    return user


def resend_verification(email: str) -> None:
    with unit_of_work():
        user = find_by_email(email)
        if user and user.is_active and not user.email_verified:
            _send_verification(user)


def _consume(user: User | None, purpose: TokenPurpose, secret: str) -> UserToken | None:
    """The live code or token of `user` matching `secret`, marked used; None if none matches."""
    if user is None:
        return None
    token = db.session.scalar(
        select(UserToken)
        .where(
            UserToken.user_id == user.id,
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),
            UserToken.expires_at > utcnow(),
        )
        .order_by(UserToken.id.desc())
        .limit(1)
        .with_for_update()
    )
    if token is None:
        return None
    if token.digest != digest(secret):
        token.attempts += 1
        if token.attempts >= MAX_CODE_ATTEMPTS:
            token.used_at = utcnow()
        return None
    token.used_at = utcnow()
    return token


def verify_email(email: str, code: str) -> None:
    with unit_of_work():
        user = find_by_email(email)
        matched = _consume(user, TokenPurpose.VERIFY_EMAIL, code.strip())
        if matched and user and user.email_verified_at is None:
            user.email_verified_at = utcnow()
            record("auth.email_verified", actor=user, target_type="user", target_id=user.id)
    if not matched:
        raise BadRequest("The code is wrong or has expired.")


def issue_tokens(user: User, family: str | None = None) -> dict[str, Any]:
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


def login(email: str, password: str) -> dict[str, Any]:
    with unit_of_work():
        user = find_by_email(email)
        if user is None:
            burn_password_check(password)
        ok = user is not None and verify_password(user.password_hash, password) and user.is_active
        if not ok or user is None:
            record(
                "auth.login_failed",
                actor=None,
                actor_email=email[:254],
                target_type="user",
                target_id=user.id if user else None,
            )
        else:
            if password_needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
            user.last_login_at = utcnow()
            record("auth.login", actor=user, target_type="user", target_id=user.id)
            tokens = issue_tokens(user)
    if not ok:
        raise Unauthorized(LOGIN_FAILED)
    return tokens


def _revoke_family(family: str) -> None:
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family == family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def _revoke_all_refresh_tokens(user: User) -> None:
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def refresh(user: User, payload: dict[str, Any]) -> dict[str, Any]:
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
    return {k: v for k, v in tokens.items() if k != "user"}


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
        record("auth.logout", actor=user, target_type="user", target_id=user.id)


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


def update_profile(user: User, data: dict[str, Any]) -> User:
    with unit_of_work():
        before = {f: getattr(user, f) for f in PROFILE_FIELDS}
        for field, value in data.items():
            setattr(user, field, value)
        changes = diff(before, {f: getattr(user, f) for f in PROFILE_FIELDS})
        if changes:
            record(
                "user.updated", actor=user, target_type="user", target_id=user.id, changes=changes
            )
    return user


def _set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.token_version += 1
    _revoke_all_refresh_tokens(user)


def change_password(user: User, current_password: str, new_password: str) -> None:
    if not verify_password(user.password_hash, current_password):
        raise Unprocessable(
            "The current password is wrong.", errors={"current_password": ["Wrong password."]}
        )
    check_password_policy(new_password, user.email, field="new_password")
    with unit_of_work():
        _set_password(user, new_password)
        record("auth.password_changed", actor=user, target_type="user", target_id=user.id)
        mail.queue_email(user.email, "password_changed", user=user)


def request_password_reset(email: str) -> None:
    with unit_of_work():
        user = find_by_email(email)
        if user is None or not user.is_active:
            return
        token = new_token()
        ttl = current_app.config["PASSWORD_RESET_TTL"]
        _issue_code(user, TokenPurpose.RESET_PASSWORD, token, ttl)
        record("auth.password_reset_requested", actor=user, target_type="user", target_id=user.id)
        mail.queue_email(
            user.email,
            "password_reset",
            user=user,
            token=token,
            minutes=ttl // timedelta(minutes=1),
            public_url=current_app.config["PUBLIC_URL"],
        )


def confirm_password_reset(token: str, new_password: str) -> None:
    with unit_of_work():
        row = db.session.scalar(
            select(UserToken)
            .where(
                UserToken.digest == digest(token),
                UserToken.purpose == TokenPurpose.RESET_PASSWORD,
                UserToken.used_at.is_(None),
                UserToken.expires_at > utcnow(),
            )
            .with_for_update()
        )
        user = db.session.get(User, row.user_id) if row else None
        if row is None or user is None or not user.is_active:
            raise BadRequest("The reset token is wrong, used or expired.")
        check_password_policy(new_password, user.email, field="new_password")
        row.used_at = utcnow()
        _set_password(user, new_password)
        if user.email_verified_at is None:
            user.email_verified_at = utcnow()  # the link proved the address
        record("auth.password_reset", actor=user, target_type="user", target_id=user.id)


_USER_SORTS = {
    "created_at": (User.created_at.asc(), User.id.asc()),
    "-created_at": (User.created_at.desc(), User.id.desc()),
    "email": (func.lower(User.email).asc(),),
    "-email": (func.lower(User.email).desc(),),
}


def list_users(
    *,
    page: int,
    page_size: int,
    sort: str,
    role: str | None = None,
    is_active: bool | None = None,
    email: str | None = None,
) -> Page:
    stmt = select(User).order_by(*_USER_SORTS[sort])
    if role is not None:
        stmt = stmt.where(User.role == role)
    if is_active is not None:
        stmt = stmt.where(User.is_active == is_active)
    if email is not None:
        stmt = stmt.where(func.lower(User.email) == email.strip().lower())
    return paginate(stmt, page, page_size)


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} does not exist.")
    return user


def admin_update_user(actor: User, user_id: int, data: dict[str, Any]) -> User:
    with unit_of_work():
        user = get_user(user_id)
        if user.id == actor.id and (
            data.get("role", user.role) != user.role or data.get("is_active") is False
        ):
            raise Conflict("Admins cannot demote or deactivate themselves.")
        before = {"role": user.role, "is_active": user.is_active}
        for field, value in data.items():
            setattr(user, field, value)
        changes = diff(before, {"role": user.role, "is_active": user.is_active})
        if changes.get("is_active", {}).get("after") is False:
            user.token_version += 1
            _revoke_all_refresh_tokens(user)
        if changes:
            record(
                "user.updated", actor=actor, target_type="user", target_id=user.id, changes=changes
            )
    return user


def create_admin(email: str, password: str) -> User:
    """Create an admin, or promote (and re-password) an existing account."""
    check_password_policy(password, email)
    with unit_of_work():
        user = find_by_email(email)
        if user is None:
            user = User(email=email.strip(), password_hash="")
            db.session.add(user)
        user.password_hash = hash_password(password)
        user.role = Role.ADMIN
        user.is_active = True
        user.email_verified_at = user.email_verified_at or utcnow()
        db.session.flush()
        record("user.created_admin", actor=None, target_type="user", target_id=user.id)
    return user


def purge_expired_tokens() -> dict[str, int]:
    """Delete revocation rows, refresh tokens and codes that have expired anyway."""
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
