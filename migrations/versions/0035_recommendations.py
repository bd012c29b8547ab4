"""recommendations: each product's stored lists (bought together, similar) and each
customer's per algorithm, written by the `recommendations` job

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-10 11:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "product_recommendations",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("list", sa.String(length=16), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("recommended_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_product_recommendations_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "product_id", "list", "position", name=op.f("pk_product_recommendations")
        ),
    )
    op.create_table(
        "user_recommendations",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("recommended_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_recommendations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "algorithm", "position", name=op.f("pk_user_recommendations")
        ),
    )


def downgrade():
    op.drop_table("user_recommendations")
    op.drop_table("product_recommendations")
