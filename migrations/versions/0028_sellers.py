"""sellers: the `seller` role, and the seller whose product it is (null: the store's own)

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02 19:30:00

"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def _roles(roles):
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_role"), type_="check")
        batch.create_check_constraint(op.f("ck_users_role"), f"role IN {roles}")


def upgrade():
    with warnings.catch_warnings():  # the tables' expression indexes, reflected alongside
        warnings.filterwarnings("ignore", "Skipped unsupported reflection")
        _roles(("customer", "seller", "staff", "admin"))
        with op.batch_alter_table("products") as batch:
            batch.add_column(sa.Column("seller_id", sa.Integer(), nullable=True))
            batch.create_foreign_key(
                op.f("fk_products_seller_id_users"),
                "users",
                ["seller_id"],
                ["id"],
                ondelete="SET NULL",
            )
    op.create_index(op.f("ix_products_seller_id"), "products", ["seller_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_products_seller_id"), table_name="products")
    op.execute("UPDATE users SET role = 'customer' WHERE role = 'seller'")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection")
        with op.batch_alter_table("products") as batch:
            batch.drop_constraint(op.f("fk_products_seller_id_users"), type_="foreignkey")
            batch.drop_column("seller_id")
        _roles(("customer", "staff", "admin"))
