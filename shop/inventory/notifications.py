"""Staff notifications: read, acknowledge, delete (low_stock opens them)."""

from __future__ import annotations

from sqlalchemy import select

from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import User
from shop.db import Page, db, get_or_404, paginate, unit_of_work, utcnow
from shop.inventory.models import Notification


def list_notifications(
    *,
    page: int,
    page_size: int,
    open: bool | None = None,
    product_id: int | None = None,
    kind: str | None = None,
) -> Page:
    stmt = select(Notification).order_by(Notification.id.desc())
    if open is not None:
        stmt = stmt.where(Notification.is_open() if open else ~Notification.is_open())
    if product_id is not None:
        stmt = stmt.where(Notification.product_id == product_id)
    if kind is not None:
        stmt = stmt.where(Notification.kind == kind)
    return paginate(stmt, page, page_size)


def get_notification(notification_id: int, *, for_update: bool = False) -> Notification:
    return get_or_404(Notification, notification_id, for_update=for_update)


def acknowledge_notification(actor: User, notification_id: int) -> Notification:
    """Acknowledge (idempotent); a later drop below threshold may open a new one."""
    with unit_of_work():
        notification = get_notification(notification_id, for_update=True)
        if notification.acknowledged_at is None:
            notification.acknowledged_at = utcnow()
            notification.acknowledged_by = actor.id
            record(
                Action.NOTIFICATION_ACKNOWLEDGED,
                actor=actor,
                target_type=Target.NOTIFICATION,
                target_id=notification.id,
            )
    return notification


def delete_notification(actor: User, notification_id: int) -> None:
    with unit_of_work():
        notification = get_notification(notification_id)
        record(
            Action.NOTIFICATION_DELETED,
            actor=actor,
            target_type=Target.NOTIFICATION,
            target_id=notification.id,
            changes={"message": notification.message, "product_id": notification.product_id},
        )
        db.session.delete(notification)
