"""idempotency keys for any endpoint: the endpoint, and the answer's Location instead of an
order id (fingerprints are of the loaded body, as before, so waiting keys still replay)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:00:00

"""

import warnings
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


@contextmanager
def _rebuilt():
    # On SQLite the table is copied; reflecting it also reflects `users`, whose expression
    # index (lower(email)) SQLAlchemy skips with a warning. That index is not rebuilt here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", sa.exc.SAWarning)
        with op.batch_alter_table("idempotency_keys") as batch:
            yield batch


def upgrade():
    with _rebuilt() as batch:
        batch.add_column(sa.Column("endpoint", sa.Text(), nullable=True))
        batch.add_column(sa.Column("response_location", sa.String(length=2048), nullable=True))
    op.execute("UPDATE idempotency_keys SET endpoint = 'POST /api/v1/orders'")
    op.execute(
        "UPDATE idempotency_keys SET response_location = '/api/v1/orders/' || order_id "
        "WHERE order_id IS NOT NULL"
    )
    with _rebuilt() as batch:
        batch.alter_column("endpoint", existing_type=sa.Text(), nullable=False)
        batch.drop_constraint("fk_idempotency_keys_order_id_orders", type_="foreignkey")
        batch.drop_column("order_id")


def downgrade():
    with _rebuilt() as batch:
        batch.add_column(sa.Column("order_id", sa.Integer(), nullable=True))
    # Keys of other endpoints cannot be kept by the old schema: they expire within a day.
    op.execute("DELETE FROM idempotency_keys WHERE endpoint != 'POST /api/v1/orders'")
    op.execute(
        "UPDATE idempotency_keys SET order_id = ("
        " SELECT id FROM orders WHERE id = CAST(SUBSTR(response_location, 16) AS INTEGER))"
    )
    with _rebuilt() as batch:
        batch.create_foreign_key(
            "fk_idempotency_keys_order_id_orders",
            "orders",
            ["order_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.drop_column("response_location")
        batch.drop_column("endpoint")
