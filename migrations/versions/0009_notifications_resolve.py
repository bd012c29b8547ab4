"""low-stock notifications resolve themselves when the stock is back above its threshold

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 12:00:00

"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OPEN = "acknowledged_at IS NULL AND resolved_at IS NULL"


def _unique_open(where: str) -> None:
    op.create_index(
        "uq_notifications_open",
        "notifications",
        ["kind", "product_id", sa.text("coalesce(variant_id, 0)")],
        unique=True,
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )


def upgrade():
    op.add_column("notifications", sa.Column("resolved_at", sa.DateTime(timezone=True)))
    op.add_column("notifications", sa.Column("resolved_by", sa.String(length=32)))
    op.drop_index("uq_notifications_open", table_name="notifications")
    _unique_open(OPEN)


def downgrade():
    op.drop_index("uq_notifications_open", table_name="notifications")
    # The old index knows only acknowledgement: a resolved notification counts as acknowledged.
    op.execute(
        "UPDATE notifications SET acknowledged_at = resolved_at "
        "WHERE acknowledged_at IS NULL AND resolved_at IS NOT NULL"
    )
    with warnings.catch_warnings():  # SQLite copies the table: see 0006
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", sa.exc.SAWarning)
        with op.batch_alter_table("notifications") as batch:
            batch.drop_column("resolved_by")
            batch.drop_column("resolved_at")
    _unique_open("acknowledged_at IS NULL")
