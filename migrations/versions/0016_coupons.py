"""coupons: codes, their scope and limits; orders and their lines keep the discount, carts
hold a coupon

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 20:40:00

"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(precision=12, scale=2)


def _scope(table, column, target):
    op.create_table(
        table,
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.Column(column, sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupons.id"],
            name=op.f(f"fk_{table}_coupon_id_coupons"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            [column],
            [f"{target}.id"],
            name=op.f(f"fk_{table}_{column}_{target}"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("coupon_id", column, name=op.f(f"pk_{table}")),
    )


def upgrade():
    op.create_table(
        "coupons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", MONEY, nullable=False),
        sa.Column("min_subtotal", MONEY, nullable=False, server_default="0"),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_redemptions", sa.Integer(), nullable=True),
        sa.Column("max_per_customer", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("redemptions", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "kind IN ('percent', 'fixed', 'free_shipping')", name=op.f("ck_coupons_kind")
        ),
        sa.CheckConstraint("value >= 0", name=op.f("ck_coupons_value_not_negative")),
        sa.CheckConstraint(
            "ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at",
            name=op.f("ck_coupons_window"),
        ),
        sa.CheckConstraint(
            "max_redemptions IS NULL OR redemptions <= max_redemptions",
            name=op.f("ck_coupons_within_limit"),
        ),
        sa.CheckConstraint("redemptions >= 0", name=op.f("ck_coupons_redemptions_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
    )
    op.create_index("uq_coupons_code", "coupons", [sa.text("lower(code)")], unique=True)
    _scope("coupon_products", "product_id", "products")
    _scope("coupon_categories", "category_id", "categories")
    op.create_table(
        "cart_coupons",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_cart_coupons_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupons.id"],
            name=op.f("fk_cart_coupons_coupon_id_coupons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_cart_coupons")),
    )
    op.create_index(op.f("ix_cart_coupons_coupon_id"), "cart_coupons", ["coupon_id"])
    op.add_column("orders", sa.Column("discount", MONEY, nullable=False, server_default="0"))
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("orders", sa.Column("coupon_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_orders_coupon_id_coupons"),
            "orders",
            "coupons",
            ["coupon_id"],
            ["id"],
            ondelete="SET NULL",
        )
    else:  # SQLite: the table is copied with the constraint (batch mode)
        with warnings.catch_warnings():  # users' expression index, reflected with orders' FK
            warnings.filterwarnings("ignore", "Skipped unsupported reflection")
            with op.batch_alter_table("orders") as batch:
                batch.add_column(sa.Column("coupon_id", sa.Integer(), nullable=True))
                batch.create_foreign_key(
                    op.f("fk_orders_coupon_id_coupons"),
                    "coupons",
                    ["coupon_id"],
                    ["id"],
                    ondelete="SET NULL",
                )
    op.add_column("orders", sa.Column("coupon_code", sa.String(64), nullable=True))
    op.create_index(
        "ix_orders_coupon_user",
        "orders",
        ["coupon_id", "user_id"],
        postgresql_where=sa.text("coupon_id IS NOT NULL"),
        sqlite_where=sa.text("coupon_id IS NOT NULL"),
    )
    op.add_column("order_items", sa.Column("discount", MONEY, nullable=False, server_default="0"))


def downgrade():
    op.drop_column("order_items", "discount")
    op.drop_index("ix_orders_coupon_user", table_name="orders")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("fk_orders_coupon_id_coupons"), "orders", type_="foreignkey")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("coupon_code")
        batch.drop_column("coupon_id")
        batch.drop_column("discount")
    op.drop_index(op.f("ix_cart_coupons_coupon_id"), table_name="cart_coupons")
    op.drop_table("cart_coupons")
    op.drop_table("coupon_categories")
    op.drop_table("coupon_products")
    op.drop_index("uq_coupons_code", table_name="coupons")
    op.drop_table("coupons")
