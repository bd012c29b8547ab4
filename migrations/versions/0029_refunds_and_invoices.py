"""refunds and invoices: an order's refunds (amount, reason, the units of its lines, whether
they were restocked; provider refunds name the refund they send), the amount refunded kept on
the order, and a gapless invoice number per year given when the order is paid

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-10 10:00:00

"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("restocked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_refunds_order_id_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_refunds_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
    )
    op.create_index(op.f("ix_refunds_order_id"), "refunds", ["order_id"])
    op.create_table(
        "refund_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("refund_id", sa.Integer(), nullable=False),
        sa.Column("order_item_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_refund_items_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["refund_id"],
            ["refunds.id"],
            name=op.f("fk_refund_items_refund_id_refunds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_item_id"],
            ["order_items.id"],
            name=op.f("fk_refund_items_order_item_id_order_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_items")),
    )
    op.create_index(op.f("ix_refund_items_refund_id"), "refund_items", ["refund_id"])
    op.create_index(op.f("ix_refund_items_order_item_id"), "refund_items", ["order_item_id"])
    op.create_table(
        "invoice_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_invoice_counters")),
    )
    with warnings.catch_warnings():  # the users table's expression index, reflected alongside
        warnings.filterwarnings("ignore", "Skipped unsupported reflection")
        with op.batch_alter_table("orders") as batch:
            batch.add_column(
                sa.Column(
                    "amount_refunded",
                    sa.Numeric(precision=12, scale=2),
                    server_default="0",
                    nullable=False,
                )
            )
            batch.add_column(sa.Column("invoice_number", sa.String(length=20), nullable=True))
            batch.add_column(sa.Column("invoiced_at", sa.DateTime(timezone=True), nullable=True))
            batch.create_unique_constraint(op.f("uq_orders_invoice_number"), ["invoice_number"])
        with op.batch_alter_table("provider_refunds") as batch:
            batch.add_column(sa.Column("refund_id", sa.Integer(), nullable=True))
            batch.create_foreign_key(
                op.f("fk_provider_refunds_refund_id_refunds"),
                "refunds",
                ["refund_id"],
                ["id"],
                ondelete="SET NULL",
            )
            batch.create_index(op.f("ix_provider_refunds_refund_id"), ["refund_id"])


def downgrade():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection")
        with op.batch_alter_table("provider_refunds") as batch:
            batch.drop_index(op.f("ix_provider_refunds_refund_id"))
            batch.drop_constraint(op.f("fk_provider_refunds_refund_id_refunds"), type_="foreignkey")
            batch.drop_column("refund_id")
        with op.batch_alter_table("orders") as batch:
            batch.drop_constraint(op.f("uq_orders_invoice_number"), type_="unique")
            batch.drop_column("invoiced_at")
            batch.drop_column("invoice_number")
            batch.drop_column("amount_refunded")
    op.drop_table("invoice_counters")
    op.drop_index(op.f("ix_refund_items_order_item_id"), table_name="refund_items")
    op.drop_index(op.f("ix_refund_items_refund_id"), table_name="refund_items")
    op.drop_table("refund_items")
    op.drop_index(op.f("ix_refunds_order_id"), table_name="refunds")
    op.drop_table("refunds")
