"""phone codes: users' phone verification time (a verified phone is one account's), and the
six-digit codes texted to it (one per user and purpose, as keyed digests)

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-04 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

VERIFIED = sa.text("phone_verified_at IS NOT NULL")


def upgrade():
    op.add_column(
        "users", sa.Column("phone_verified_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "uq_users_verified_phone",
        "users",
        ["phone"],
        unique=True,
        postgresql_where=VERIFIED,
        sqlite_where=VERIFIED,
    )
    op.create_table(
        "phone_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_phone_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_codes")),
        sa.UniqueConstraint("user_id", "purpose", name=op.f("uq_phone_codes_user_id")),
    )


def downgrade():
    op.drop_table("phone_codes")
    op.drop_index("uq_users_verified_phone", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("phone_verified_at")
