"""each product's sales summed over every aggregated day, for top products

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 15:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "report_product_sales_totals",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("units_sold", sa.BigInteger(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_report_product_sales_totals_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_report_product_sales_totals")),
    )
    # From the daily rows already written; aggregate_day keeps it in step from here on.
    op.execute(
        "INSERT INTO report_product_sales_totals (product_id, units_sold, revenue)"
        " SELECT product_id, sum(units_sold), sum(revenue) FROM report_daily_product_sales"
        " GROUP BY product_id"
    )
    op.create_index(
        "ix_report_product_sales_totals_units_sold",
        "report_product_sales_totals",
        [sa.text("units_sold DESC"), "product_id"],
    )
    op.create_index(
        "ix_report_product_sales_totals_revenue",
        "report_product_sales_totals",
        [sa.text("revenue DESC"), "product_id"],
    )


def downgrade():
    op.drop_index(
        "ix_report_product_sales_totals_revenue", table_name="report_product_sales_totals"
    )
    op.drop_index(
        "ix_report_product_sales_totals_units_sold", table_name="report_product_sales_totals"
    )
    op.drop_table("report_product_sales_totals")
