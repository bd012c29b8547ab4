"""the event log

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 18:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_events_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_position", "events", ["txid", "id"])
    op.create_index("ix_events_user_position", "events", ["user_id", "txid", "id"])
    op.create_index("ix_events_type_position", "events", ["type", "txid", "id"])
    op.create_index(op.f("ix_events_created_at"), "events", ["created_at"])


def downgrade():
    op.drop_table("events")
