"""Roles, password hashing (Argon2id) and the random secrets behind codes and reset tokens."""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

# OWASP's Argon2id minimum: 19 MiB of memory, two iterations, one lane.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
PASSWORD_MIN_LENGTH = 8
# Longer passwords are refused (422) so that hashing cost stays bounded.
PASSWORD_MAX_LENGTH = 128
# A password must hold something other than the digits 0-9 (searched, as JSON Schema patterns
# are; `\D` would mean other digits too in Python, not in JSON Schema).
NOT_ALL_DIGITS = "[^0-9]"


class Role(enum.StrEnum):
    """Who a user is. A seller and staff are each a customer and more; an admin is every role.
    (Sellers are not staff: they manage only their own products, see shop.auth.policy.)"""

    CUSTOMER = "customer"
    SELLER = "seller"
    STAFF = "staff"
    ADMIN = "admin"

    def includes(self, other: Role) -> bool:
        """Whether this role may do what `other` may do."""
        return other in _INCLUDES[self]


_INCLUDES = {
    Role.CUSTOMER: frozenset({Role.CUSTOMER}),
    Role.SELLER: frozenset({Role.SELLER, Role.CUSTOMER}),
    Role.STAFF: frozenset({Role.STAFF, Role.CUSTOMER}),
    Role.ADMIN: frozenset(Role),
}


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def burn_password_check(password: str) -> None:
    """Cost what a real check costs, so an unknown email answers no faster than a wrong
    password."""
    verify_password(_dummy_hash(), password)


def new_token() -> str:
    """A URL-safe single-use secret (password reset)."""
    return secrets.token_urlsafe(32)


def new_code() -> str:
    """A six-digit code a person can type (email verification)."""
    return f"{secrets.randbelow(10**6):06d}"


def digest(secret: str) -> str:
    """Keyed hash of a code or token; a leaked table reveals neither."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def signed_by(secret: str, raw_body: bytes, header: str | None) -> bool:
    """Whether `header` is `sha256=<hex HMAC-SHA256 of raw_body with secret>`, compared in
    constant time (the payment and carrier webhooks); no secret configured: never."""
    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return bool(secret) and header is not None and hmac.compare_digest(header.strip(), expected)
