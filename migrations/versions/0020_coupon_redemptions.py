"""coupon redemptions: one row per order holding a coupon (what limits per customer count);
a coupon's counter is kept only while it has a total limit

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 01:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "coupon_redemptions",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_coupon_redemptions_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupons.id"],
            name=op.f("fk_coupon_redemptions_coupon_id_coupons"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_coupon_redemptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_coupon_redemptions")),
    )
    op.create_index(
        "ix_coupon_redemptions_coupon_user", "coupon_redemptions", ["coupon_id", "user_id"]
    )
    op.execute(
        "INSERT INTO coupon_redemptions (order_id, coupon_id, user_id) "
        "SELECT id, coupon_id, user_id FROM orders "
        "WHERE coupon_id IS NOT NULL AND status != 'cancelled'"
    )
    op.execute("UPDATE coupons SET redemptions = 0 WHERE max_redemptions IS NULL")


def downgrade():
    op.execute(
        "UPDATE coupons SET redemptions = (SELECT count(*) FROM coupon_redemptions"
        " WHERE coupon_redemptions.coupon_id = coupons.id)"
    )
    op.drop_index("ix_coupon_redemptions_coupon_user", table_name="coupon_redemptions")
    op.drop_table("coupon_redemptions")
