"""The audit trail's part of a user's personal data (shop.privacy): the entries about them,
as actor or as the user acted on, are exported; erasing them keeps the entries and the id,
and takes the email (and the personal values of profile changes) out of them."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select, update

from shop import privacy
from shop.audit.models import AuditLog, Target
from shop.audit.schemas import AuditLogSchema
from shop.db import db, table_of

# Keys of a change payload whose values are a person's (a profile change's before/after).
PERSONAL_KEYS = frozenset(
    {"email", "guest_email", "first_name", "last_name", "phone", "date_of_birth"}
)
ERASED = "[erased]"


def _about(user_id: int) -> ColumnElement[bool]:
    # Both sides are indexed (actor_id; target_type, target_id).
    return or_(
        AuditLog.actor_id == user_id,
        and_(AuditLog.target_type == Target.USER, AuditLog.target_id == user_id),
    )


def _export(user_id: int) -> dict[str, Any]:
    entries = db.session.scalars(select(AuditLog).where(_about(user_id)).order_by(AuditLog.id))
    dumped: list[dict[str, Any]] = AuditLogSchema(many=True).dump(entries)
    for entry in dumped:
        if entry["actor_id"] != user_id:
            # Another's act on them (staff, the system, someone's failed login): what was
            # done, not who the other person is.
            entry.update(actor_email=None, ip=None, user_agent=None)
    return {"audit_entries": dumped}


def _scrub(value: Any, erasure: privacy.Erasure, personal: bool = False) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, erasure, personal or k in PERSONAL_KEYS) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, erasure, personal) for v in value]
    if personal and value is not None:
        return ERASED
    if isinstance(value, str):
        return re.sub(re.escape(erasure.email), erasure.placeholder, value, flags=re.IGNORECASE)
    return value


def _erase(erasure: privacy.Erasure) -> None:
    """Their entries name them by the placeholder address (a failed login's typed address
    too); change payloads lose the email wherever it appears. Three statements at most."""
    about = _about(erasure.user_id)
    db.session.execute(
        update(AuditLog)
        .where(
            about,
            or_(
                AuditLog.actor_id == erasure.user_id,
                func.lower(AuditLog.actor_email) == erasure.email.lower(),
            ),
        )
        .values(actor_email=erasure.placeholder)
    )
    rows = db.session.execute(select(AuditLog.id, AuditLog.changes).where(about))
    scrubbed = [
        {"entry_id": entry_id, "scrubbed": new}
        for entry_id, changes in rows
        if (new := _scrub(changes, erasure)) != changes
    ]
    if scrubbed:
        table = table_of(AuditLog)
        db.session.execute(
            update(table)
            .where(table.c.id == bindparam("entry_id"))
            .values(changes=bindparam("scrubbed")),
            scrubbed,
        )


PERSONAL_DATA = privacy.Contributor(
    exports=("audit_logs.actor_id",),
    export=_export,
    erase=_erase,
)
