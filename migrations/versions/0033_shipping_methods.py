"""shipping methods: per destination country (one row each, "*" for everywhere), with a
price, a free-over threshold and a delivery estimate; orders keep the method chosen, its name
and carrier

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-05 10:00:00

"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(precision=12, scale=2)
CHOSEN = sa.text("shipping_method_id IS NOT NULL")


def upgrade():
    op.create_table(
        "shipping_methods",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("carrier", sa.String(length=100), nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("free_over", MONEY, nullable=True),
        sa.Column("min_days", sa.Integer(), nullable=False),
        sa.Column("max_days", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("price >= 0", name=op.f("ck_shipping_methods_price_not_negative")),
        sa.CheckConstraint(
            "free_over IS NULL OR free_over >= 0",
            name=op.f("ck_shipping_methods_free_over_not_negative"),
        ),
        sa.CheckConstraint(
            "min_days >= 0 AND min_days <= max_days", name=op.f("ck_shipping_methods_days")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipping_methods")),
    )
    op.create_index(
        "ix_shipping_methods_active_price", "shipping_methods", ["is_active", "price", "id"]
    )
    op.create_table(
        "shipping_method_countries",
        sa.Column("method_id", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["method_id"],
            ["shipping_methods.id"],
            name=op.f("fk_shipping_method_countries_method_id_shipping_methods"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("method_id", "country", name=op.f("pk_shipping_method_countries")),
    )
    op.create_index(
        "ix_shipping_method_countries_country",
        "shipping_method_countries",
        ["country", "method_id"],
    )
    with warnings.catch_warnings():  # the users table's expression index, reflected alongside
        warnings.filterwarnings("ignore", "Skipped unsupported reflection")
        with op.batch_alter_table("orders") as batch:
            batch.add_column(sa.Column("shipping_method_id", sa.Integer(), nullable=True))
            batch.add_column(sa.Column("shipping_method_name", sa.String(100), nullable=True))
            batch.add_column(sa.Column("shipping_carrier", sa.String(100), nullable=True))
            batch.create_foreign_key(
                op.f("fk_orders_shipping_method_id_shipping_methods"),
                "shipping_methods",
                ["shipping_method_id"],
                ["id"],
                ondelete="SET NULL",
            )
    op.create_index(
        "ix_orders_shipping_method",
        "orders",
        ["shipping_method_id"],
        postgresql_where=CHOSEN,
        sqlite_where=CHOSEN,
    )


def downgrade():
    op.drop_index("ix_orders_shipping_method", table_name="orders")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection")
        with op.batch_alter_table("orders") as batch:
            batch.drop_constraint(
                op.f("fk_orders_shipping_method_id_shipping_methods"), type_="foreignkey"
            )
            batch.drop_column("shipping_carrier")
            batch.drop_column("shipping_method_name")
            batch.drop_column("shipping_method_id")
    op.drop_index("ix_shipping_method_countries_country", table_name="shipping_method_countries")
    op.drop_table("shipping_method_countries")
    op.drop_index("ix_shipping_methods_active_price", table_name="shipping_methods")
    op.drop_table("shipping_methods")
