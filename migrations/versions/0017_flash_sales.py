"""flash sales: a percent off products and categories for a window

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 21:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _scope(table, column, target):
    op.create_table(
        table,
        sa.Column("flash_sale_id", sa.Integer(), nullable=False),
        sa.Column(column, sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["flash_sale_id"],
            ["flash_sales.id"],
            name=op.f(f"fk_{table}_flash_sale_id_flash_sales"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            [column],
            [f"{target}.id"],
            name=op.f(f"fk_{table}_{column}_{target}"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("flash_sale_id", column, name=op.f(f"pk_{table}")),
    )


def upgrade():
    op.create_table(
        "flash_sales",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("discount_percent", sa.Integer(), nullable=False),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "discount_percent BETWEEN 1 AND 90", name=op.f("ck_flash_sales_percent")
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_flash_sales_window")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flash_sales")),
    )
    op.create_index(op.f("ix_flash_sales_starts_at"), "flash_sales", ["starts_at"])
    op.create_index(op.f("ix_flash_sales_ends_at"), "flash_sales", ["ends_at"])
    _scope("flash_sale_products", "product_id", "products")
    _scope("flash_sale_categories", "category_id", "categories")


def downgrade():
    op.drop_table("flash_sale_categories")
    op.drop_table("flash_sale_products")
    op.drop_index(op.f("ix_flash_sales_ends_at"), table_name="flash_sales")
    op.drop_index(op.f("ix_flash_sales_starts_at"), table_name="flash_sales")
    op.drop_table("flash_sales")
