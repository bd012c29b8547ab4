"""Test data builders: rows straight into the database, tokens without a password check."""

from __future__ import annotations

import itertools
from functools import cache

from flask import Flask

from shop.auth.models import User
from shop.auth.services import issue_tokens
from shop.db import unit_of_work, utcnow
from shop.extensions import db
from shop.security import Role, hash_password

PASSWORD = "correct-horse-9"
_sequence = itertools.count(1)


@cache
def _hash(password: str) -> str:
    return hash_password(password)


def make_user(
    app: Flask,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    role: Role = Role.CUSTOMER,
    verified: bool = True,
    active: bool = True,
    **fields: str,
) -> User:
    with app.app_context(), unit_of_work():
        user = User(
            email=email or f"user{next(_sequence)}@example.com",
            password_hash=_hash(password),
            role=role,
            is_active=active,
            email_verified_at=utcnow() if verified else None,
            **fields,
        )
        db.session.add(user)
    return user


def tokens_for(app: Flask, user: User) -> dict[str, str]:
    with app.app_context(), unit_of_work():
        fresh = db.session.get(User, user.id)
        assert fresh is not None
        tokens = issue_tokens(fresh)
    return {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def headers_for(app: Flask, user: User) -> dict[str, str]:
    return bearer(tokens_for(app, user)["access_token"])
