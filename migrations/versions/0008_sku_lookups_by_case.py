"""SKUs compared whatever their case: indexes on lower(sku)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 11:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_products_sku_lower", "products", [sa.text("lower(sku)")])
    op.create_index("ix_product_variants_sku_lower", "product_variants", [sa.text("lower(sku)")])


def downgrade():
    op.drop_index("ix_product_variants_sku_lower", table_name="product_variants")
    op.drop_index("ix_products_sku_lower", table_name="products")
