"""The event log's part of a user's personal data (shop.privacy): the events of their feed
(GET /events), exported. The erasure keeps them: they are facts of orders, which stay, and
hold no name or address (ids, numbers, statuses, amounts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shop import privacy
from shop.db import db
from shop.events.models import EventRecord
from shop.events.schemas import EventSchema


def _export(user_id: int) -> dict[str, Any]:
    events = db.session.scalars(
        select(EventRecord)
        .where(EventRecord.user_id == user_id)
        .order_by(EventRecord.txid, EventRecord.id)
    )
    return {"events": EventSchema(many=True).dump(events)}


PERSONAL_DATA = privacy.Contributor(exports=("events.user_id",), export=_export)
