"""images: products' (and their variants') images in order, a category's image

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 21:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _files_and_times():
    """The columns of models.ImageFiles and TimestampMixin."""
    return [
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("thumbnail_key", sa.String(length=200), nullable=False),
        sa.Column("thumbnail_webp_key", sa.String(length=200), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def upgrade():
    op.create_table(
        "product_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("variant_id", sa.Integer(), nullable=True),
        sa.Column("alt", sa.String(length=300), server_default="", nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        *_files_and_times(),
        sa.CheckConstraint("position >= 1", name=op.f("ck_product_images_position_positive")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_product_images_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["product_variants.id"],
            name=op.f("fk_product_images_variant_id_product_variants"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_images")),
    )
    # A product's images in order (and its foreign key's index).
    op.create_index(
        "ix_product_images_product_position", "product_images", ["product_id", "position"]
    )
    op.create_index(op.f("ix_product_images_variant_id"), "product_images", ["variant_id"])
    op.create_table(
        "category_images",
        sa.Column("category_id", sa.Integer(), nullable=False),
        *_files_and_times(),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_category_images_category_id_categories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("category_id", name=op.f("pk_category_images")),
    )


def downgrade():
    op.drop_table("category_images")
    op.drop_table("product_images")
