"""Two-factor with TOTP (RFC 6238: 30 s steps, six digits, one step of drift either way):
setting it up, enabling it with a first code, the second step of a login, recovery codes,
turning it off. A code is accepted once (the user's last accepted step is kept, under the
user's row lock); recovery codes are stored as keyed digests and used once."""

from __future__ import annotations

import hmac
import io
import secrets
import time
from datetime import timedelta
from typing import TypedDict

import pyotp
import segno
from flask import current_app
from sqlalchemy import delete, select

from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import RecoveryCode, TokenPurpose, User, UserToken
from shop.auth.tokens import Login, issue_tokens
from shop.db import db, unit_of_work, utcnow
from shop.errors import BadRequest, Conflict, NotFound, Unauthorized
from shop.security import digest, new_token, verify_password

STEP = 30  # seconds
MFA_TOKEN_TTL = timedelta(minutes=5)
MAX_ATTEMPTS = 5  # wrong codes per mfa_token before it is spent
RECOVERY_CODES = 10
WRONG_CODE = "The code is wrong, used already, or the login step has expired."


class Challenge(TypedDict):
    """What POST /auth/login answers for a user with two-factor on."""

    mfa_required: bool
    mfa_token: str


def _locked(user: User) -> User:
    locked = _locked_id(user.id)
    assert locked is not None
    return locked


def _locked_id(user_id: int) -> User | None:
    return db.session.get(User, user_id, with_for_update=True, populate_existing=True)


def _uri(user: User, secret: str) -> str:
    issuer = current_app.config["STORE_NAME"]
    return pyotp.TOTP(secret, interval=STEP).provisioning_uri(name=user.email, issuer_name=issuer)


def set_up(user: User) -> dict[str, str]:
    """A new secret, not in force until a code from it enables it (409 while two-factor is
    on: turn it off first)."""
    with unit_of_work():
        user = _locked(user)
        if user.two_factor_enabled:
            raise Conflict("Two-factor is on; turn it off to set up another secret.")
        user.totp_secret = pyotp.random_base32()
        user.totp_last_step = None
        secret = user.totp_secret
    return {"secret": secret, "otpauth_uri": _uri(user, secret)}


def qr_png(user: User) -> bytes:
    """The QR code of the secret's otpauth:// URI, for an authenticator app to scan: only
    between setup and enable (once two-factor is on, the secret is never shown again: a
    stolen access token must not yield the second factor)."""
    if user.totp_secret is None:
        raise NotFound("Set up two-factor first (POST /auth/2fa/setup).")
    if user.two_factor_enabled:
        raise Conflict("Two-factor is on: its secret is not shown again.")
    buffer = io.BytesIO()
    segno.make(_uri(user, user.totp_secret), error="m").save(buffer, kind="png", scale=6)
    return buffer.getvalue()


def _accept_code(user: User, code: str) -> bool:
    """Whether `code` is the secret's for the step now or the one either side, and newer than
    the last one accepted; if so it is the last one accepted now. `user` is locked."""
    if user.totp_secret is None or not (code.isascii() and code.isdigit() and len(code) == 6):
        return False
    totp = pyotp.TOTP(user.totp_secret, interval=STEP)
    now = int(time.time()) // STEP
    for step in (now - 1, now, now + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            if user.totp_last_step is not None and step <= user.totp_last_step:
                return False  # replayed, or older than one already used
            user.totp_last_step = step
            return True
    return False


def _normal(recovery_code: str) -> str:
    return recovery_code.replace("-", "").replace(" ", "").lower()


def _use_recovery_code(user: User, recovery_code: str) -> bool:
    found = db.session.scalar(
        select(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.digest == digest(_normal(recovery_code)),
            RecoveryCode.used_at.is_(None),
        )
        .with_for_update()
    )
    if found is None:
        return False
    found.used_at = utcnow()
    return True


def enable(user: User, code: str) -> dict[str, list[str]]:
    """Turn two-factor on with a first code from the secret set up; answers the ten recovery
    codes (shown once: only their digests are kept)."""
    with unit_of_work() as session:
        user = _locked(user)
        if user.two_factor_enabled:
            raise Conflict("Two-factor is on already.")
        if user.totp_secret is None:
            raise Conflict("Set up two-factor first (POST /auth/2fa/setup).")
        if not _accept_code(user, code):
            raise BadRequest(WRONG_CODE, errors={"code": ["Wrong or used."]})
        user.totp_enabled_at = utcnow()
        codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        session.add_all(RecoveryCode(user_id=user.id, digest=digest(c)) for c in codes)
        record(Action.AUTH_2FA_ENABLED, actor=user, target_type=Target.USER, target_id=user.id)
    return {"recovery_codes": [f"{c[:5]}-{c[5:]}" for c in codes]}


def disable(user: User, password: str, code: str) -> None:
    """Turn two-factor off: the password and a code (or a recovery code)."""
    with unit_of_work() as session:
        user = _locked(user)
        if not user.two_factor_enabled:
            raise Conflict("Two-factor is off.")
        if not verify_password(user.password_hash, password):
            raise Unauthorized("The password is wrong.")
        if not (_accept_code(user, code) or _use_recovery_code(user, code)):
            raise BadRequest(WRONG_CODE, errors={"code": ["Wrong or used."]})
        user.totp_secret = user.totp_enabled_at = user.totp_last_step = None
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        record(Action.AUTH_2FA_DISABLED, actor=user, target_type=Target.USER, target_id=user.id)


def challenge(user: User) -> Challenge:
    """A login's first step passed (inside its unit of work): the token of its second one."""
    token = new_token()
    db.session.add(
        UserToken(user_id=user.id, purpose=TokenPurpose.MFA_LOGIN, digest=digest(token),
                  expires_at=utcnow() + MFA_TOKEN_TTL)
    )  # fmt: skip
    return {"mfa_required": True, "mfa_token": token}


def finish_login(mfa_token: str, code: str | None, recovery_code: str | None) -> Login:
    """The second step: a code (or a recovery code) for the login the token stands for. Five
    wrong ones spend the token; a right one spends it too."""
    with unit_of_work():
        step = db.session.scalar(
            select(UserToken)
            .where(
                UserToken.purpose == TokenPurpose.MFA_LOGIN,
                UserToken.digest == digest(mfa_token),
                UserToken.used_at.is_(None),
                UserToken.expires_at > utcnow(),
            )
            .with_for_update()
        )
        user = _locked_id(step.user_id) if step is not None else None
        ok = (
            user is not None
            and user.is_active
            and user.two_factor_enabled
            and (
                _accept_code(user, code)
                if code is not None
                else _use_recovery_code(user, recovery_code or "")
            )
        )
        if step is not None and not ok:
            step.attempts += 1
            if step.attempts >= MAX_ATTEMPTS:
                step.used_at = utcnow()
        if ok and step is not None and user is not None:
            step.used_at = user.last_login_at = utcnow()
            record(Action.AUTH_LOGIN, actor=user, target_type=Target.USER, target_id=user.id,
                   changes={"two_factor": "recovery code" if code is None else "code"})  # fmt: skip
            tokens = issue_tokens(user)
        else:
            record(Action.AUTH_LOGIN_FAILED, actor=None, target_type=Target.USER,
                   target_id=user.id if user else None, changes={"two_factor": True})  # fmt: skip
    if not ok:
        raise Unauthorized(WRONG_CODE)
    return tokens
