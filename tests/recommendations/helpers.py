"""Shared by the recommendations tests: the interactions written, orders placed and paid."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from shop.db import db
from shop.reports.behaviour import flush_interactions
from shop.reports.models import Interaction

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
SESSION = "anon-session-0123456789"


def flush(app: Flask) -> dict[str, Any]:
    with app.app_context():
        return flush_interactions()


def interactions(app: Flask) -> list[tuple[Any, ...]]:
    """(user_id, session_id, product_id, kind, value) of every interaction, oldest first."""
    with app.app_context():
        rows = db.session.execute(
            select(
                Interaction.user_id,
                Interaction.session_id,
                Interaction.product_id,
                Interaction.kind,
                Interaction.value,
            ).order_by(Interaction.id)
        )
        return [tuple(row) for row in rows]


def order(client: Any, headers: dict[str, str], *products: Any, quantity: int = 1) -> Any:
    items = [{"product_id": p.id, "quantity": quantity} for p in products]
    response = client.post(
        f"{API}/orders", headers=headers, json={"items": items, "shipping_address": SHIP_TO}
    )
    assert response.status_code == 201, response.json
    return response.json


def pay(client: Any, staff: dict[str, str], placed: Any) -> None:
    response = client.post(
        f"{API}/orders/{placed['id']}/payments",
        headers=staff,
        json={"amount": placed["total"], "method": "card"},
    )
    assert response.status_code == 201, response.json
