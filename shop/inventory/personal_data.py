"""Inventory's part of a user's personal data (shop.privacy): only staff work names users
here, which is not exported and stays (naming the anonymised account)."""

from __future__ import annotations

from shop import privacy

STAFF_WORK = "an act of the user as staff, for the store (the audit entries record it)"

PERSONAL_DATA = privacy.Contributor(
    not_exported={
        "purchase_orders.created_by": STAFF_WORK,
        "notifications.acknowledged_by": STAFF_WORK,
    },
)
