"""Demo data for an empty database, and generated customers in bulk for volume."""

from __future__ import annotations

import sys
from typing import Any

import click
from sqlalchemy import func, insert, select

from shop.auth.models import User
from shop.db import unit_of_work, utcnow
from shop.extensions import db
from shop.security import Role, hash_password

DEMO_ACCOUNTS = (
    ("admin@example.com", "admin-pass-123", Role.ADMIN, "Ada", "Admin"),
    ("staff@example.com", "staff-pass-123", Role.STAFF, "Sam", "Staff"),
    ("customer@example.com", "customer-pass-123", Role.CUSTOMER, "Cleo", "Customer"),
)
BATCH = 1000


def seed_demo(*, customers: int = 0) -> dict[str, Any]:
    """Demo accounts when the database has no users yet; then `customers` generated ones."""
    with unit_of_work() as session:
        empty = not session.scalar(select(func.count()).select_from(User))
        if empty:
            for email, password, role, first, last in DEMO_ACCOUNTS:
                session.add(
                    User(
                        email=email,
                        password_hash=hash_password(password),
                        role=role,
                        first_name=first,
                        last_name=last,
                        email_verified_at=utcnow(),
                    )
                )
    generated = _generate_customers(customers) if customers else 0
    return {"demo_data": "created" if empty else "skipped (not empty)", "customers": generated}


def _generate_customers(count: int) -> int:
    # One hash for every generated account: Argon2 per row would take minutes.
    password_hash = hash_password("customer-pass-123")
    start = (db.session.scalar(select(func.max(User.id))) or 0) + 1
    with click.progressbar(length=count, label="customers", file=sys.stderr) as bar:
        for offset in range(0, count, BATCH):
            rows = [
                {
                    "email": f"customer{start + i}@example.com",
                    "password_hash": password_hash,
                    "first_name": "Customer",
                    "last_name": str(start + i),
                    "role": Role.CUSTOMER.value,
                    "email_verified_at": utcnow(),
                }
                for i in range(offset, min(offset + BATCH, count))
            ]
            with unit_of_work() as session:
                session.execute(insert(User), rows)
            bar.update(len(rows))
    return count
