"""users' date of birth (optional)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02 02:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("date_of_birth", sa.Date(), nullable=True))


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_column("date_of_birth")
