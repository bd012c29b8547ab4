"""Test data builders: rows straight into the database, tokens without a password check."""

from __future__ import annotations

import itertools
from decimal import Decimal
from functools import cache
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from shop.auth.models import User
from shop.auth.tokens import issue_tokens
from shop.db import db, unit_of_work, utcnow
from shop.products import catalog, categories
from shop.products.models import Category, Product, ProductVariant, StockMovement
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


_skus = itertools.count(1)


def make_category(app: Flask, name: str = "Gadgets", **fields: Any) -> Category:
    with app.app_context():
        return categories.create_category(None, {"name": name, **fields})


def make_product(app: Flask, **fields: Any) -> Product:
    data = {"sku": f"SKU-{next(_skus):05d}", "name": "Widget", "price": Decimal("10.00"),
            "stock": 10, **fields}  # fmt: skip
    with app.app_context():
        product = catalog.create_product(None, data)  # type: ignore[arg-type]
        product.variants  # noqa: B018  (loaded while the session is open)
        return product


def make_variant(app: Flask, product: Product, **fields: Any) -> ProductVariant:
    data = {"sku": f"VAR-{next(_skus):05d}", "name": "Medium", "price": Decimal("12.00"),
            "stock": 5, **fields}  # fmt: skip
    with app.app_context():
        return catalog.create_variant(None, product.id, data)  # type: ignore[arg-type]


def ledger_sum(app: Flask, product_id: int, variant_id: int | None = None) -> int:
    with app.app_context():
        stmt = select(func.coalesce(func.sum(StockMovement.quantity), 0)).where(
            StockMovement.product_id == product_id
        )
        if variant_id is not None:
            stmt = stmt.where(StockMovement.variant_id == variant_id)
        return int(db.session.scalar(stmt) or 0)


def stock_of(app: Flask, product_id: int) -> int:
    with app.app_context():
        return int(db.session.scalar(select(Product.stock).where(Product.id == product_id)) or 0)
