"""carts as rows: a signed-in user's or a guest's (known by its token's SHA-256); cart
lines and the cart's coupon belong to a cart, not to a user

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 10:00:00

"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

LINE = ["product_id", sa.text("coalesce(variant_id, 0)")]


def upgrade():
    op.create_table(
        "carts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "last_used_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(user_id IS NULL) <> (token_hash IS NULL)", name=op.f("ck_carts_one_owner")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_carts_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carts")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_carts_token_hash")),
        sa.UniqueConstraint("user_id", name=op.f("uq_carts_user_id")),
    )
    op.create_index(op.f("ix_carts_last_used_at"), "carts", ["last_used_at"])
    # One cart per user that has lines or a coupon.
    op.execute(
        "INSERT INTO carts (user_id) SELECT user_id FROM cart_items"
        " UNION SELECT user_id FROM cart_coupons"
    )
    _lines_to_carts()
    _coupons_to_carts()


def _lines_to_carts():
    op.drop_index("uq_cart_items_line", table_name="cart_items")
    with op.batch_alter_table("cart_items") as batch:
        batch.add_column(sa.Column("cart_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE cart_items SET cart_id ="
        " (SELECT carts.id FROM carts WHERE carts.user_id = cart_items.user_id)"
    )
    with warnings.catch_warnings():  # the users table's expression index, reflected alongside
        warnings.filterwarnings("ignore", "Skipped unsupported reflection")
        with op.batch_alter_table("cart_items") as batch:
            batch.alter_column("cart_id", existing_type=sa.Integer(), nullable=False)
            batch.drop_constraint("fk_cart_items_user_id_users", type_="foreignkey")
            batch.drop_column("user_id")
            batch.create_foreign_key(
                op.f("fk_cart_items_cart_id_carts"),
                "carts",
                ["cart_id"],
                ["id"],
                ondelete="CASCADE",
            )
    op.create_index("uq_cart_items_line", "cart_items", ["cart_id", *LINE], unique=True)


def _coupons_to_carts():
    # At most one row per user: copied through Python, the table made again around its new key.
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT carts.id, cart_coupons.coupon_id FROM cart_coupons"
            " JOIN carts ON carts.user_id = cart_coupons.user_id"
        )
    ).all()
    op.drop_index(op.f("ix_cart_coupons_coupon_id"), table_name="cart_coupons")
    op.drop_table("cart_coupons")
    table = op.create_table(
        "cart_coupons",
        sa.Column("cart_id", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cart_id"],
            ["carts.id"],
            name=op.f("fk_cart_coupons_cart_id_carts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupons.id"],
            name=op.f("fk_cart_coupons_coupon_id_coupons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cart_id", name=op.f("pk_cart_coupons")),
    )
    op.create_index(op.f("ix_cart_coupons_coupon_id"), "cart_coupons", ["coupon_id"])
    if rows:
        op.bulk_insert(table, [{"cart_id": cart, "coupon_id": coupon} for cart, coupon in rows])


def downgrade():
    # A guest cart has no user to go back to: its lines and coupon go with it.
    bind = op.get_bind()
    coupons = bind.execute(
        sa.text(
            "SELECT carts.user_id, cart_coupons.coupon_id FROM cart_coupons"
            " JOIN carts ON carts.id = cart_coupons.cart_id WHERE carts.user_id IS NOT NULL"
        )
    ).all()
    op.drop_index(op.f("ix_cart_coupons_coupon_id"), table_name="cart_coupons")
    op.drop_table("cart_coupons")
    table = op.create_table(
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
    if coupons:
        op.bulk_insert(table, [{"user_id": user, "coupon_id": coupon} for user, coupon in coupons])
    op.execute(
        "DELETE FROM cart_items WHERE cart_id IN (SELECT id FROM carts WHERE user_id IS NULL)"
    )
    op.drop_index("uq_cart_items_line", table_name="cart_items")
    with op.batch_alter_table("cart_items") as batch:
        batch.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE cart_items SET user_id ="
        " (SELECT carts.user_id FROM carts WHERE carts.id = cart_items.cart_id)"
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection")
        with op.batch_alter_table("cart_items") as batch:
            batch.alter_column("user_id", existing_type=sa.Integer(), nullable=False)
            batch.drop_constraint("fk_cart_items_cart_id_carts", type_="foreignkey")
            batch.drop_column("cart_id")
            batch.create_foreign_key(
                op.f("fk_cart_items_user_id_users"),
                "users",
                ["user_id"],
                ["id"],
                ondelete="CASCADE",
            )
    op.create_index("uq_cart_items_line", "cart_items", ["user_id", *LINE], unique=True)
    op.drop_index(op.f("ix_carts_last_used_at"), table_name="carts")
    op.drop_table("carts")
