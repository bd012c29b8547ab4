"""daily sales aggregates

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 04:21:56.257809

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "report_daily_sales",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column(
            "computed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_report_daily_sales")),
    )
    op.create_table(
        "report_dirty_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "marked_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_report_dirty_days")),
    )
    op.create_table(
        "report_daily_product_sales",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("units_sold", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_report_daily_product_sales_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("day", "product_id", name=op.f("pk_report_daily_product_sales")),
    )
    op.create_index(
        op.f("ix_report_daily_product_sales_product_id"),
        "report_daily_product_sales",
        ["product_id"],
        unique=False,
    )
    op.create_table(
        "report_daily_status_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "status", name=op.f("pk_report_daily_status_counts")),
    )


def downgrade():
    op.drop_table("report_daily_status_counts")
    op.drop_index(
        op.f("ix_report_daily_product_sales_product_id"), table_name="report_daily_product_sales"
    )

    op.drop_table("report_daily_product_sales")
    op.drop_table("report_dirty_days")
    op.drop_table("report_daily_sales")
