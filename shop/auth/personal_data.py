"""Personal data of an account: the export (GET /auth/me/export) and the erasure (DELETE
/auth/me) over every domain's contributor (shop.privacy), and accounts' own part: the profile,
sessions, codes, two-factor."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from shop import mail, privacy
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import (
    LoginSession,
    PhoneCode,
    RecoveryCode,
    RefreshToken,
    User,
    UserToken,
)
from shop.auth.schemas import (
    CodeRecordSchema,
    SessionRecordSchema,
    TwoFactorStatusSchema,
    UserSchema,
)
from shop.db import db, unit_of_work, utcnow
from shop.errors import Conflict, Unauthorized
from shop.security import Role, verify_password


def export_data(user: User) -> dict[str, Any]:
    """Everything stored about `user`, a section per kind; the export itself is audited."""
    with unit_of_work():
        sections = privacy.export(user.id)
        record(Action.USER_DATA_EXPORTED, actor=user, target_type=Target.USER, target_id=user.id)
    return {"user_id": user.id, "exported_at": utcnow(), "sections": sections}


def erase_account(user: User, password: str) -> None:
    """Anonymise the account for good: the farewell email is queued to the address while it
    is there, then every domain's eraser runs (accounts' own among them: the profile, every
    token and session, two-factor). Orders stay, with the anonymised user. An admin may go
    unless no other active admin would be left (409)."""
    with unit_of_work():
        # An admin locks every active admin's row first, in id order (so two admins going at
        # once queue rather than deadlock, and the second sees the first gone).
        admins = _active_admins() if user.role == Role.ADMIN else []
        locked = db.session.get(User, user.id, with_for_update=True, populate_existing=True)
        assert locked is not None
        user = locked
        if not verify_password(user.password_hash, password):
            raise Unauthorized("The password is wrong.")
        if user.role == Role.ADMIN and not set(admins) - {user.id}:
            raise Conflict("You are the last active admin: make another one before you go.")
        mail.queue_email(user.email, "account_erased", user=user)
        privacy.erase(privacy.Erasure(user_id=user.id, email=user.email))
        record(Action.USER_ERASED, actor=user, target_type=Target.USER, target_id=user.id)


def _active_admins() -> list[int]:
    return list(
        db.session.scalars(
            select(User.id)
            .where(User.role == Role.ADMIN, User.is_active)
            .order_by(User.id)
            .with_for_update()
        )
    )


def _export(user_id: int) -> dict[str, Any]:
    user = db.session.get(User, user_id)
    assert user is not None
    recovery_left = db.session.scalar(
        select(func.count()).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    sessions = db.session.scalars(
        select(LoginSession)
        .where(LoginSession.user_id == user_id)
        .order_by(LoginSession.created_at)
    )
    emailed = db.session.scalars(
        select(UserToken).where(UserToken.user_id == user_id).order_by(UserToken.id)
    )
    texted = db.session.scalars(
        select(PhoneCode).where(PhoneCode.user_id == user_id).order_by(PhoneCode.id)
    )
    codes = [{"sent_to": "email", "purpose": t.purpose, "phone": None, "created_at": t.created_at,
              "expires_at": t.expires_at, "used_at": t.used_at} for t in emailed]  # fmt: skip
    codes += [{"sent_to": "phone", "purpose": c.purpose, "phone": c.phone, "used_at": None,
               "created_at": c.created_at, "expires_at": c.expires_at} for c in texted]  # fmt: skip
    two_factor = {"enabled": user.two_factor_enabled, "enabled_at": user.totp_enabled_at,
                  "recovery_codes_left": recovery_left or 0}  # fmt: skip
    return {
        "profile": UserSchema().dump(user),
        "two_factor": TwoFactorStatusSchema().dump(two_factor),
        "sessions": SessionRecordSchema(many=True).dump(sessions),
        "codes": CodeRecordSchema(many=True).dump(codes),
    }


def _erase(erasure: privacy.Erasure) -> None:
    """The account itself: no token of it counts from the commit on (the version is
    bumped and the user inactive, which the per-request lookup checks), the email is free to
    register again, the verified phone to be verified by another account."""
    user = db.session.get(User, erasure.user_id)
    assert user is not None
    for model in (LoginSession, RefreshToken, UserToken, RecoveryCode, PhoneCode):
        db.session.execute(delete(model).where(model.user_id == user.id))
    user.token_version += 1
    user.is_active = False
    user.email = erasure.placeholder
    user.password_hash = ""  # no password matches it (security.verify_password)
    user.first_name = user.last_name = user.phone = ""
    user.phone_verified_at = user.email_verified_at = user.last_login_at = None
    user.date_of_birth = None
    user.totp_secret = user.totp_enabled_at = user.totp_last_step = None


PERSONAL_DATA = privacy.Contributor(
    exports=(
        "sessions.user_id",
        "user_tokens.user_id",
        "phone_codes.user_id",
        "recovery_codes.user_id",
    ),
    export=_export,
    erase=_erase,
    not_exported={
        "refresh_tokens.user_id": "each session's chain of refresh-token ids: bookkeeping of "
        "the sessions exported (deleted by the erasure)",
    },
)
