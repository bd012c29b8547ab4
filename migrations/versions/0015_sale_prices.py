"""sale prices: a compare-at price on products and variants; order lines keep their list price

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 19:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(precision=12, scale=2)


def upgrade():
    op.add_column("products", sa.Column("compare_at_price", MONEY, nullable=True))
    op.add_column("product_variants", sa.Column("compare_at_price", MONEY, nullable=True))
    # ?on_sale=true: only the few products on sale are in these indexes.
    op.create_index(
        "ix_products_on_sale",
        "products",
        ["id"],
        postgresql_where=sa.text("compare_at_price > price"),
        sqlite_where=sa.text("compare_at_price > price"),
    )
    op.create_index(
        "ix_product_variants_on_sale",
        "product_variants",
        ["product_id"],
        postgresql_where=sa.text("compare_at_price > price"),
        sqlite_where=sa.text("compare_at_price > price"),
    )
    # Lines ordered before sale prices were charged their list price. (A default for the
    # ALTER only: SQLite adds a NOT NULL column only with one, and keeps it; nothing reads it.)
    op.add_column("order_items", sa.Column("list_price", MONEY, nullable=False, server_default="0"))
    op.execute("UPDATE order_items SET list_price = unit_price")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("order_items", "list_price", server_default=None)


def downgrade():
    op.drop_column("order_items", "list_price")
    op.drop_index("ix_product_variants_on_sale", table_name="product_variants")
    op.drop_index("ix_products_on_sale", table_name="products")
    op.drop_column("product_variants", "compare_at_price")
    op.drop_column("products", "compare_at_price")
