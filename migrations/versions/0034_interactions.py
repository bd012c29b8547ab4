"""interactions: customers' (and anonymous sessions') interactions with products, searches,
sessions logged in, the batches of them written, and each product's views and cart adds per
day

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-10 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

ANONYMOUS = sa.text("user_id IS NULL")


def _id():
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def _created_at():
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def upgrade():
    op.create_table(
        "interactions",
        _id(),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.String(length=128), nullable=True),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Integer(), nullable=True),
        _created_at(),
        sa.CheckConstraint(
            "user_id IS NOT NULL OR session_id IS NOT NULL", name=op.f("ck_interactions_someone")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_interactions_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_interactions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interactions")),
    )
    op.create_index("ix_interactions_user_created", "interactions", ["user_id", "created_at"])
    op.create_index(
        "ix_interactions_product_kind_created",
        "interactions",
        ["product_id", "kind", "created_at"],
    )
    op.create_index("ix_interactions_created_at", "interactions", ["created_at"])
    op.create_index(
        "ix_interactions_anonymous_session",
        "interactions",
        ["session_id"],
        postgresql_where=ANONYMOUS,
        sqlite_where=ANONYMOUS,
    )
    op.create_table(
        "search_queries",
        _id(),
        sa.Column("query", sa.String(length=200), nullable=False),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_queries")),
    )
    op.create_index("ix_search_queries_created_query", "search_queries", ["created_at", "query"])
    op.create_table(
        "session_logins",
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "logged_in_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_session_logins_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_logins")),
    )
    op.create_index(op.f("ix_session_logins_user_id"), "session_logins", ["user_id"])
    op.create_index(op.f("ix_session_logins_logged_in_at"), "session_logins", ["logged_in_at"])
    op.create_table(
        "interaction_batches",
        sa.Column("token", sa.String(length=36), nullable=False),
        sa.Column(
            "applied_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_interaction_batches")),
    )
    op.create_index(
        op.f("ix_interaction_batches_applied_at"), "interaction_batches", ["applied_at"]
    )
    op.create_table(
        "report_daily_product_interactions",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("cart_adds", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_report_daily_product_interactions_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "day", "product_id", name=op.f("pk_report_daily_product_interactions")
        ),
    )
    op.create_index(
        op.f("ix_report_daily_product_interactions_product_id"),
        "report_daily_product_interactions",
        ["product_id"],
    )


def downgrade():
    op.drop_table("report_daily_product_interactions")
    op.drop_table("interaction_batches")
    op.drop_table("session_logins")
    op.drop_table("search_queries")
    op.drop_table("interactions")
