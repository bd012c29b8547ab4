"""tax by destination: rates per country and region; order lines keep their tax, orders
their tax lines

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 01:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "tax_rates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=True),
        sa.Column("rate", sa.Numeric(precision=5, scale=4), nullable=False),
        sa.Column("applies_to_shipping", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("rate >= 0 AND rate <= 1", name=op.f("ck_tax_rates_rate_fraction")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tax_rates")),
    )
    op.create_index(
        "uq_tax_rates_country_region",
        "tax_rates",
        ["country", sa.text("coalesce(region, '')")],
        unique=True,
    )
    op.add_column(
        "order_items", sa.Column("tax", sa.Numeric(12, 2), server_default="0", nullable=False)
    )
    op.add_column("orders", sa.Column("tax_lines", sa.JSON(), server_default="[]", nullable=False))


def downgrade():
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("tax_lines")
    with op.batch_alter_table("order_items") as batch:
        batch.drop_column("tax")
    op.drop_index("uq_tax_rates_country_region", table_name="tax_rates")
    op.drop_table("tax_rates")
