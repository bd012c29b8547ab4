"""stripe payments: the PaymentIntents made for orders, the Stripe events handled (once each),
and refunds sent back through the provider

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "payment_intents",
        sa.Column("intent_id", sa.String(length=255), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_payment_intents_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("intent_id", name=op.f("pk_payment_intents")),
    )
    op.create_index(op.f("ix_payment_intents_order_id"), "payment_intents", ["order_id"])
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    op.create_table(
        "provider_refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider_refund_id", sa.String(length=255), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_provider_refunds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_provider_refunds_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_provider_refunds_payment_id_payments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_refunds")),
        sa.UniqueConstraint(
            "provider_refund_id", name=op.f("uq_provider_refunds_provider_refund_id")
        ),
    )
    op.create_index(op.f("ix_provider_refunds_order_id"), "provider_refunds", ["order_id"])
    op.create_index(op.f("ix_provider_refunds_payment_id"), "provider_refunds", ["payment_id"])


def downgrade():
    op.drop_index(op.f("ix_provider_refunds_payment_id"), table_name="provider_refunds")
    op.drop_index(op.f("ix_provider_refunds_order_id"), table_name="provider_refunds")
    op.drop_table("provider_refunds")
    op.drop_table("stripe_events")
    op.drop_index(op.f("ix_payment_intents_order_id"), table_name="payment_intents")
    op.drop_table("payment_intents")
