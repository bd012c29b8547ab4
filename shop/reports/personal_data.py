"""Reports' part of a user's personal data (shop.privacy): the behaviour recorded about them
(views, cart and wishlist adds, purchases, ratings), exported. Erasing deletes it and the
sessions linked to the account; the daily figures it was counted in stay (they name nobody).
Searches are kept without whose they were, so there is nothing of theirs to export."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from shop import privacy
from shop.db import db
from shop.reports.models import Interaction, SessionLogin


def _export(user_id: int) -> dict[str, Any]:
    rows = db.session.execute(
        select(Interaction.kind, Interaction.product_id, Interaction.value, Interaction.created_at)
        .where(Interaction.user_id == user_id)
        .order_by(Interaction.id)
    )
    return {
        "interactions": [
            {
                "kind": kind,
                "product_id": product_id,
                "value": value,
                "at": created_at.isoformat(),
            }
            for kind, product_id, value, created_at in rows
        ]
    }


def _erase(erasure: privacy.Erasure) -> None:
    db.session.execute(delete(Interaction).where(Interaction.user_id == erasure.user_id))
    db.session.execute(delete(SessionLogin).where(SessionLogin.user_id == erasure.user_id))


PERSONAL_DATA = privacy.Contributor(
    exports=("interactions.user_id",),
    export=_export,
    erase=_erase,
    not_exported={
        "session_logins.user_id": "a browsing session's link to the account that logged in "
        "with it, kept a day to give its late views to the account; the views are exported",
    },
)
