"""returns (RMA): an order's returns (status, the staff decision and its note), their lines
(units asked back, received, damaged, refunded) and the refunds made on receipt

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-12 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

STATUSES = "('requested', 'approved', 'rejected', 'received', 'refunded')"


def upgrade():
    op.create_table(
        "returns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_returns_status")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_returns_order_id_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["users.id"],
            name=op.f("fk_returns_requested_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.id"],
            name=op.f("fk_returns_decided_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returns")),
    )
    op.create_index(op.f("ix_returns_order_id"), "returns", ["order_id"])
    op.create_index("ix_returns_status_created", "returns", ["status", "created_at"])
    op.create_index("ix_returns_created_at", "returns", ["created_at"])
    op.create_table(
        "return_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("return_id", sa.Integer(), nullable=False),
        sa.Column("order_item_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("received_quantity", sa.Integer(), server_default="0", nullable=False),
        sa.Column("damaged_quantity", sa.Integer(), server_default="0", nullable=False),
        sa.Column("refunded_quantity", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_return_items_quantity_positive")),
        sa.CheckConstraint(
            "received_quantity >= 0 AND received_quantity <= quantity",
            name=op.f("ck_return_items_received_range"),
        ),
        sa.CheckConstraint(
            "damaged_quantity >= 0 AND damaged_quantity <= received_quantity",
            name=op.f("ck_return_items_damaged_range"),
        ),
        sa.CheckConstraint(
            "refunded_quantity >= 0 AND refunded_quantity <= received_quantity",
            name=op.f("ck_return_items_refunded_range"),
        ),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["returns.id"],
            name=op.f("fk_return_items_return_id_returns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_item_id"],
            ["order_items.id"],
            name=op.f("fk_return_items_order_item_id_order_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_return_items")),
    )
    op.create_index(op.f("ix_return_items_return_id"), "return_items", ["return_id"])
    op.create_index(op.f("ix_return_items_order_item_id"), "return_items", ["order_item_id"])
    op.create_table(
        "return_refunds",
        sa.Column("return_id", sa.Integer(), nullable=False),
        sa.Column("refund_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["returns.id"],
            name=op.f("fk_return_refunds_return_id_returns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"],
            ["refunds.id"],
            name=op.f("fk_return_refunds_refund_id_refunds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("return_id", "refund_id", name=op.f("pk_return_refunds")),
    )


def downgrade():
    op.drop_table("return_refunds")
    op.drop_index(op.f("ix_return_items_order_item_id"), table_name="return_items")
    op.drop_index(op.f("ix_return_items_return_id"), table_name="return_items")
    op.drop_table("return_items")
    op.drop_index("ix_returns_created_at", table_name="returns")
    op.drop_index("ix_returns_status_created", table_name="returns")
    op.drop_index(op.f("ix_returns_order_id"), table_name="returns")
    op.drop_table("returns")
