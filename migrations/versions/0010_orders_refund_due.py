"""orders owe a refund when paid after they were cancelled

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 12:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "orders",
        sa.Column(
            "refund_due", sa.Numeric(precision=12, scale=2), server_default="0", nullable=False
        ),
    )
    op.create_index(
        "ix_orders_refund_due",
        "orders",
        ["created_at"],
        postgresql_where=sa.text("refund_due > 0"),
        sqlite_where=sa.text("refund_due > 0"),
    )


def downgrade():
    op.drop_index("ix_orders_refund_due", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("refund_due")
