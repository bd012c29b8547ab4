"""outbox messages waiting at deploy time name the low-stock task where it lives now

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 11:00:00

"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OLD = "shop.inventory.jobs.open_low_stock_notification"
NEW = "shop.inventory.low_stock.open_low_stock_notification"


def upgrade():
    # Same arguments (product_id, variant_id); new messages reach it through shop.bus.deliver.
    op.execute(f"UPDATE outbox_messages SET task = '{NEW}' WHERE task = '{OLD}'")


def downgrade():
    op.execute(f"UPDATE outbox_messages SET task = '{OLD}' WHERE task = '{NEW}'")
