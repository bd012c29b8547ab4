"""The migrations build exactly what the models declare, and carry the rows a deploy finds."""

from flask_migrate import check, downgrade, upgrade
from sqlalchemy import text

from bench.data import recreate
from shop.db import db
from tests.conftest import TEST_DATABASE_URL

SCRATCH_URL = TEST_DATABASE_URL + "_migrations"


def test_models_and_migrations_agree(app):
    with app.app_context():
        check()  # raises when autogenerate would find a difference


def rows(sql):
    found = [tuple(row) for row in db.session.execute(text(sql))]
    db.session.rollback()  # hold no lock a migration would wait for
    return found


def test_waiting_idempotency_keys_and_outbox_messages_survive_the_architecture_release(
    other_app,
):
    recreate(SCRATCH_URL)
    scratch = other_app(SQLALCHEMY_DATABASE_URI=SCRATCH_URL)
    with scratch.app_context():
        upgrade(revision="0005")
        db.session.execute(
            text(
                "INSERT INTO users (id, email, password_hash) VALUES (1, 'a@example.com', 'x');"
                "INSERT INTO orders (id, user_id, status, payment_status, subtotal, shipping_cost,"
                " tax, total, currency, shipping_address)"
                " VALUES (42, 1, 'pending', 'unpaid', 1, 0, 0, 1, 'USD', '{}');"
                "INSERT INTO idempotency_keys (user_id, key, fingerprint, response_status,"
                " response_body, order_id, expires_at)"
                " VALUES (1, 'k', 'f', 201, '{}', 42, now() + interval '1 day');"
                "INSERT INTO outbox_messages (task, payload, attempts) VALUES"
                " ('shop.inventory.jobs.open_low_stock_notification',"
                '  \'{"product_id": 5, "variant_id": null}\', 0)'
            )
        )
        db.session.commit()
        upgrade()
        assert rows("SELECT endpoint FROM idempotency_keys") == [("POST /api/v1/orders",)]
        assert rows("SELECT key, response_location FROM idempotency_keys") == [
            ("k", "/api/v1/orders/42")
        ]
        assert rows("SELECT task FROM outbox_messages") == [
            ("shop.inventory.low_stock.open_low_stock_notification",)
        ]
        downgrade(revision="0005")
        assert rows("SELECT key, order_id FROM idempotency_keys") == [("k", 42)]
        assert rows("SELECT task FROM outbox_messages") == [
            ("shop.inventory.jobs.open_low_stock_notification",)
        ]
        db.session.remove()
        db.engine.dispose()
