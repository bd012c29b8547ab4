"""guest orders: an order without an account has the guest's email and the SHA-256 of its
access key (user_id set when that email is verified later); Idempotency-Keys of an anonymous
client are scoped to it (a guest cart) instead of a user

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03 11:00:00

"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

GUEST = sa.text("user_id IS NULL")


def upgrade():
    with warnings.catch_warnings():  # the users table's expression index, reflected alongside
        warnings.filterwarnings("ignore", "Skipped unsupported reflection")
        with op.batch_alter_table("orders") as batch:
            batch.alter_column("user_id", existing_type=sa.Integer(), nullable=True)
            batch.add_column(sa.Column("guest_email", sa.String(length=254), nullable=True))
            batch.add_column(sa.Column("access_key_hash", sa.String(length=64), nullable=True))
            batch.create_check_constraint(
                op.f("ck_orders_has_customer"), "user_id IS NOT NULL OR guest_email IS NOT NULL"
            )
        with op.batch_alter_table("idempotency_keys") as batch:
            batch.alter_column("user_id", existing_type=sa.Integer(), nullable=True)
            batch.add_column(sa.Column("scope", sa.String(length=64), nullable=True))
    # The guest orders an email's account takes over once verified.
    op.create_index(
        "ix_orders_guest_email",
        "orders",
        [sa.text("lower(guest_email)")],
        postgresql_where=GUEST,
        sqlite_where=GUEST,
    )
    op.create_index(
        "uq_idempotency_keys_scope_key", "idempotency_keys", ["scope", "key"], unique=True
    )


def downgrade():
    op.drop_index("uq_idempotency_keys_scope_key", table_name="idempotency_keys")
    op.drop_index("ix_orders_guest_email", table_name="orders")
    op.execute("DELETE FROM idempotency_keys WHERE user_id IS NULL")
    op.execute("DELETE FROM orders WHERE user_id IS NULL")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection")
        with op.batch_alter_table("idempotency_keys") as batch:
            batch.drop_column("scope")
            batch.alter_column("user_id", existing_type=sa.Integer(), nullable=False)
        with op.batch_alter_table("orders") as batch:
            batch.drop_constraint(op.f("ck_orders_has_customer"), type_="check")
            batch.drop_column("access_key_hash")
            batch.drop_column("guest_email")
            batch.alter_column("user_id", existing_type=sa.Integer(), nullable=False)
