"""Accounts: registration, email verification, login, profile, passwords, user admin."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from shop import bus, mail, outbox
from shop.audit.models import Action, Target
from shop.audit.services import changes_recorded, record
from shop.auth import two_factor
from shop.auth.events import UserEmailVerified, UserRegistered, UserRoleChanged
from shop.auth.models import TokenPurpose, User, UserToken
from shop.auth.schemas import ProfileUpdate, Registration, UserAdminUpdate
from shop.auth.tokens import Login, issue_tokens, revoke_all
from shop.auth.two_factor import Challenge
from shop.db import Page, db, get_or_404, paginate, unit_of_work, utcnow
from shop.errors import BadRequest, Conflict, Unauthorized, Unprocessable
from shop.security import (
    NOT_ALL_DIGITS,
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
PROFILE_FIELDS = ("first_name", "last_name", "phone", "date_of_birth")
ADMIN_FIELDS = ("role", "is_active")


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def check_password_policy(password: str, email: str, field: str = "password") -> None:
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"Must be at least {PASSWORD_MIN_LENGTH} characters.")
    if password and not re.search(NOT_ALL_DIGITS, password):
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


def register(data: Registration) -> User:
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
            date_of_birth=data.get("date_of_birth"),
        )
        db.session.add(user)
        db.session.flush()
        _send_verification(user)
        record(Action.AUTH_REGISTER, actor=user, target_type=Target.USER, target_id=user.id)
        bus.publish(UserRegistered(user_id=user.id, role=user.role))
    return user


def _may_send(user: User | None, purpose: TokenPurpose) -> bool:
    """An active account that has not had CODE_EMAILS_PER_HOUR codes for `purpose` in the last
    hour (so nobody can bomb an address with them)."""
    if user is None or not user.is_active:
        return False
    sent = db.session.scalar(
        select(func.count()).where(
            UserToken.user_id == user.id,
            UserToken.purpose == purpose,
            UserToken.created_at >= utcnow() - timedelta(hours=1),
        )
    )
    return (sent or 0) < int(current_app.config["CODE_EMAILS_PER_HOUR"])


def resend_verification(email: str) -> None:
    """The same work whether or not the address has an account: the lookup is a job's."""
    with unit_of_work():
        outbox.add(send_verification_code, email=email.strip()[:254])


def send_verification_code(email: str) -> None:
    """The job behind a resend: a new code for an unverified account (within the limit)."""
    with unit_of_work():
        user = find_by_email(email)
        if user and not user.email_verified and _may_send(user, TokenPurpose.VERIFY_EMAIL):
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


def _was_sent(user: User, purpose: TokenPurpose, secret: str) -> bool:
    """Whether `secret` is a code `user` was sent for `purpose`, used or not."""
    return bool(
        db.session.scalar(
            select(UserToken.id).where(
                UserToken.user_id == user.id,
                UserToken.purpose == purpose,
                UserToken.digest == digest(secret),
            )
        )
    )


def verify_email(email: str, code: str) -> None:
    """Idempotent: the code that verified an address verifies it again (204); any other code
    for it is as wrong as ever (400), so the answer tells nothing about the account."""
    with unit_of_work():
        user = find_by_email(email)
        if user is not None and user.email_verified_at is not None:
            matched = _was_sent(user, TokenPurpose.VERIFY_EMAIL, code.strip())
        else:
            matched = _consume(user, TokenPurpose.VERIFY_EMAIL, code.strip()) is not None
        if matched and user and user.email_verified_at is None:
            user.email_verified_at = utcnow()
            record(
                Action.AUTH_EMAIL_VERIFIED, actor=user, target_type=Target.USER, target_id=user.id
            )
            bus.publish(UserEmailVerified(user_id=user.id, email=user.email))
    if not matched:
        raise BadRequest("The code is wrong or has expired.")


def login(email: str, password: str) -> Login | Challenge:
    """The tokens; with two-factor on, the token of the second step (POST /auth/login/2fa)."""
    with unit_of_work():
        user = find_by_email(email)
        if user is None:
            burn_password_check(password)
        ok = user is not None and verify_password(user.password_hash, password) and user.is_active
        if not ok or user is None:
            record(
                Action.AUTH_LOGIN_FAILED,
                actor=None,
                actor_email=email[:254],
                target_type=Target.USER,
                target_id=user.id if user else None,
            )
        else:
            if password_needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
            if user.two_factor_enabled:
                return two_factor.challenge(user)
            user.last_login_at = utcnow()
            record(Action.AUTH_LOGIN, actor=user, target_type=Target.USER, target_id=user.id)
            tokens = issue_tokens(user)
    if not ok:
        raise Unauthorized(LOGIN_FAILED)
    return tokens


def update_profile(user: User, data: ProfileUpdate) -> User:
    with (
        unit_of_work(),
        changes_recorded(
            Action.USER_UPDATED,
            actor=user,
            target_type=Target.USER,
            target=user,
            fields=PROFILE_FIELDS,
        ),
    ):
        if data.get("phone", user.phone) != user.phone:
            user.phone_verified_at = None  # a new number is proved anew (auth.phone)
        for field, value in data.items():
            setattr(user, field, value)
    return user


def _set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    revoke_all(user)


def change_password(user: User, current_password: str, new_password: str) -> None:
    if not verify_password(user.password_hash, current_password):
        raise Unprocessable(
            "The current password is wrong.", errors={"current_password": ["Wrong password."]}
        )
    check_password_policy(new_password, user.email, field="new_password")
    with unit_of_work():
        _set_password(user, new_password)
        record(Action.AUTH_PASSWORD_CHANGED, actor=user, target_type=Target.USER, target_id=user.id)
        mail.queue_email(user.email, "password_changed", user=user)


def request_password_reset(email: str) -> None:
    """The same work whether or not the address has an account: the lookup is a job's."""
    with unit_of_work():
        outbox.add(send_password_reset, email=email.strip()[:254])


def send_password_reset(email: str) -> None:
    """The job behind a reset request: email a reset token (within the limit)."""
    with unit_of_work():
        user = find_by_email(email)
        if user is None or not _may_send(user, TokenPurpose.RESET_PASSWORD):
            return
        token = new_token()
        ttl = current_app.config["PASSWORD_RESET_TTL"]
        _issue_code(user, TokenPurpose.RESET_PASSWORD, token, ttl)
        record(
            Action.AUTH_PASSWORD_RESET_REQUESTED,
            actor=user,
            target_type=Target.USER,
            target_id=user.id,
        )
        mail.queue_email(
            user.email,
            "password_reset",
            user=user,
            token=token,
            minutes=ttl // timedelta(minutes=1),
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
            bus.publish(UserEmailVerified(user_id=user.id, email=user.email))
        record(Action.AUTH_PASSWORD_RESET, actor=user, target_type=Target.USER, target_id=user.id)


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
    return get_or_404(User, user_id)


def admin_update_user(actor: User, user_id: int, data: UserAdminUpdate) -> User:
    with unit_of_work():
        user = get_user(user_id)
        if user.id == actor.id and (
            data.get("role", user.role) != user.role or data.get("is_active") is False
        ):
            raise Conflict("Admins cannot demote or deactivate themselves.")
        previous_role = user.role
        with changes_recorded(
            Action.USER_UPDATED,
            actor=actor,
            target_type=Target.USER,
            target=user,
            fields=ADMIN_FIELDS,
        ) as changes:
            for field, value in data.items():
                setattr(user, field, value)
        if changes.get("is_active", {}).get("after") is False:
            revoke_all(user)
        if "role" in changes:
            bus.publish(
                UserRoleChanged(user_id=user.id, role=user.role, previous_role=previous_role)
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
        verified = user.email_verified_at is not None
        user.email_verified_at = user.email_verified_at or utcnow()
        db.session.flush()
        if not verified:
            bus.publish(UserEmailVerified(user_id=user.id, email=user.email))
        record(Action.USER_CREATED_ADMIN, actor=None, target_type=Target.USER, target_id=user.id)
    return user
