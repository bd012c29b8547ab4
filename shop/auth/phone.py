"""Phone codes: six digits texted to a user's phone to verify it, to log in with it and to
reset the password with it.

A code is random (secrets), valid PHONE_CODE_TTL (10 minutes), one per user and purpose (a
new one replaces it), spent by its use or by its fifth wrong guess, and kept as a keyed digest
(HMAC-SHA256 with SECRET_KEY over the purpose, user, number and code). A slow hash would add
nothing here: a million codes are hashed in minutes whatever the cost, so what protects a
leaked table is the key it does not hold; and a keyed digest costs the login path nothing.
It is compared in constant time. Login and reset codes go only to verified phones, which are
each one account's; who asks is never told whether a number has an account (the lookup is the
job's). Requests and wrong guesses are limited per number and per address in phone_routes."""

from __future__ import annotations

import hmac

from flask import current_app
from sqlalchemy import delete, select, update

from shop import mail, outbox, sms
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth import two_factor
from shop.auth.accounts import check_password_policy
from shop.auth.models import VERIFIED_PHONE, PhoneCode, PhonePurpose, User
from shop.auth.phone_schemas import as_e164
from shop.auth.tokens import Login, issue_tokens, revoke_all
from shop.auth.two_factor import Challenge
from shop.db import db, unit_of_work, utcnow
from shop.errors import BadRequest, Conflict, Unauthorized
from shop.security import digest, hash_password, new_code

MAX_ATTEMPTS = 5
WRONG_CODE = "The code is wrong or has expired."
LOGIN_FAILED = "The phone number or the code is wrong, or the code has expired."


def _locked(user_id: int) -> User:
    user = db.session.get(User, user_id, with_for_update=True, populate_existing=True)
    assert user is not None
    return user


def _owner(phone: str) -> User | None:
    """The account whose verified phone `phone` is, locked (its codes change under it)."""
    return db.session.scalar(
        select(User).where(User.phone == phone, VERIFIED_PHONE).with_for_update()
    )


def _digest(user: User, purpose: PhonePurpose, code: str) -> str:
    return digest(f"phone:{purpose}:{user.id}:{user.phone}:{code}")


def _issue(user: User, purpose: PhonePurpose) -> None:
    """A new code for `purpose`, replacing any earlier one, texted to the user's phone after
    commit. `user` is locked."""
    code = new_code()
    db.session.execute(
        delete(PhoneCode).where(PhoneCode.user_id == user.id, PhoneCode.purpose == purpose)
    )
    db.session.add(
        PhoneCode(user_id=user.id, purpose=purpose, phone=user.phone,
                  digest=_digest(user, purpose, code),
                  expires_at=utcnow() + current_app.config["PHONE_CODE_TTL"])
    )  # fmt: skip
    # The code and the store's name, nothing else: a text is read on a locked screen.
    sms.queue_sms(user.phone, f"{code} is your {current_app.config['STORE_NAME']} code.")


def _right_code(user: User, purpose: PhonePurpose, code: str) -> PhoneCode | None:
    """The user's live code for `purpose` if `code` is it (the caller spends it); a wrong
    guess counts against the code, and the fifth spends it. `user` is locked."""
    row = db.session.scalar(
        select(PhoneCode).where(
            PhoneCode.user_id == user.id,
            PhoneCode.purpose == purpose,
            PhoneCode.phone == user.phone,  # texted to the number the account has now
            PhoneCode.expires_at > utcnow(),
        )
    )
    if row is None:
        return None
    if hmac.compare_digest(row.digest, _digest(user, purpose, code)):
        return row
    row.attempts += 1
    if row.attempts >= MAX_ATTEMPTS:
        db.session.delete(row)
    return None


def _to_verify(user: User) -> User:
    """The user, locked, with a phone to verify (else a 409 saying why)."""
    user = _locked(user.id)
    if not user.phone:
        raise Conflict("There is no phone number to verify: set one (PATCH /auth/me).")
    if as_e164(user.phone) != user.phone:
        raise Conflict(
            "The phone number was saved before numbers were checked: set it again in "
            "international form (PATCH /auth/me)."
        )
    if user.phone_verified:
        raise Conflict("The phone number is verified already.")
    return user


def request_verification(user: User) -> None:
    """Text a code that verifies the user's phone."""
    with unit_of_work():
        _issue(_to_verify(user), PhonePurpose.VERIFY)


def verify(user: User, code: str) -> None:
    """The texted code proves the phone: it is verified, and this account's alone (another
    that had verified it, when the number was someone else's, no longer has it verified)."""
    with unit_of_work():
        user = _to_verify(user)
        row = _right_code(user, PhonePurpose.VERIFY, code)
        if row is not None:
            db.session.delete(row)
            db.session.execute(
                update(User)
                .where(User.phone == user.phone, User.id != user.id, VERIFIED_PHONE)
                .values(phone_verified_at=None)
            )
            user.phone_verified_at = utcnow()
            record(Action.AUTH_PHONE_VERIFIED, actor=user, target_type=Target.USER,
                   target_id=user.id)  # fmt: skip
    if row is None:
        raise BadRequest(WRONG_CODE, errors={"code": ["Wrong, used or expired."]})


def request_code(phone: str, purpose: PhonePurpose) -> None:
    """A login or reset code for `phone`: the same work whether or not it is an account's
    verified phone (the lookup is the job's)."""
    with unit_of_work():
        outbox.add(send_code, phone=phone, purpose=purpose.value)


def send_code(phone: str, purpose: str) -> None:
    """The job behind a request: text a code if `phone` is an active account's verified
    phone, else nothing."""
    with unit_of_work():
        user = _owner(phone)
        if user is None or not user.is_active:
            return
        _issue(user, PhonePurpose(purpose))
        if purpose == PhonePurpose.RESET_PASSWORD:
            record(Action.AUTH_PASSWORD_RESET_REQUESTED, actor=user, target_type=Target.USER,
                   target_id=user.id, changes={"by": "phone"})  # fmt: skip


def login(phone: str, code: str) -> Login | Challenge:
    """The tokens for a texted code, as a password login answers them (a session of its
    own); with two-factor on, the token of the second step."""
    with unit_of_work():
        user = _owner(phone)
        row = _right_code(user, PhonePurpose.LOGIN, code) if user is not None else None
        ok = row is not None and user is not None and user.is_active
        if row is not None:
            db.session.delete(row)
        if ok and user is not None:
            if user.two_factor_enabled:
                return two_factor.challenge(user)
            user.last_login_at = utcnow()
            record(Action.AUTH_LOGIN, actor=user, target_type=Target.USER, target_id=user.id,
                   changes={"by": "phone"})  # fmt: skip
            tokens = issue_tokens(user)
        else:
            record(Action.AUTH_LOGIN_FAILED, actor=None, actor_email=phone,
                   target_type=Target.USER, target_id=user.id if user else None,
                   changes={"by": "phone"})  # fmt: skip
    if not ok:
        raise Unauthorized(LOGIN_FAILED)
    return tokens


def reset_password(phone: str, code: str, new_password: str) -> None:
    """A new password with a texted code; every token issued before stops working, and the
    account's email is told. A right code with a weak password (422) is not spent."""
    with unit_of_work():
        user = _owner(phone)
        row = _right_code(user, PhonePurpose.RESET_PASSWORD, code) if user else None
        ok = row is not None and user is not None and user.is_active
        if ok and row is not None and user is not None:
            check_password_policy(new_password, user.email, field="new_password")
            db.session.delete(row)
            user.password_hash = hash_password(new_password)
            revoke_all(user)
            record(Action.AUTH_PASSWORD_RESET, actor=user, target_type=Target.USER,
                   target_id=user.id, changes={"by": "phone"})  # fmt: skip
            mail.queue_email(user.email, "password_changed", user=user)
    if not ok:
        raise BadRequest(LOGIN_FAILED, errors={"code": ["Wrong, used or expired."]})
