"""Writing audit entries (inside the caller's unit of work) and reading them back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Protocol

from flask import has_request_context, request
from sqlalchemy import insert, select

from shop.audit.models import SYSTEM_ACTOR, Action, AuditLog, Target
from shop.db import Page, db, get_or_404, paginate, table_of
from shop.errors import request_id


class Actor(Protocol):
    """Who acted: a user (the audit trail sits below accounts, so it names no User)."""

    @property
    def id(self) -> int: ...

    @property
    def email(self) -> str: ...


def record(
    action: Action,
    *,
    actor: Actor | None,
    target_type: Target | None = None,
    target_id: int | None = None,
    changes: dict[str, Any] | None = None,
    actor_email: str | None = None,
) -> None:
    """Add an audit entry to the current unit of work; `actor=None` means the system.

    A Core INSERT on the table: nothing reads the entry back, so the ORM's bookkeeping (and
    a RETURNING of its id) would be waste."""
    entry: dict[str, Any] = {
        "actor_id": actor.id if actor else None,
        "actor_email": actor.email if actor else (actor_email or SYSTEM_ACTOR),
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "changes": changes,
    }
    if has_request_context():
        entry["ip"] = request.remote_addr
        entry["user_agent"] = (request.user_agent.string or "")[:512] or None
        entry["request_id"] = request_id()
    db.session.execute(insert(table_of(AuditLog)), [entry])


def snapshot(obj: object, names: tuple[str, ...]) -> dict[str, Any]:
    """The named attributes of `obj` as JSON-ready values (decimals and times as strings)."""

    def plain(value: Any) -> Any:
        return (
            str(value)
            if value is not None and not isinstance(value, (str, int, bool, dict, list))
            else value
        )

    return {name: plain(getattr(obj, name)) for name in names}


class _Target(Protocol):
    @property
    def id(self) -> int: ...


@contextmanager
def changes_recorded(
    action: Action,
    *,
    actor: Actor | None,
    target_type: Target,
    target: _Target,
    fields: tuple[str, ...],
) -> Iterator[dict[str, Any]]:
    """Record what the block changed of `target`'s `fields`, `{field: {"before": old,
    "after": new}}`, if anything; the dict it yields holds those changes afterwards (empty:
    nothing changed, nothing was recorded)."""
    before = snapshot(target, fields)
    changes: dict[str, Any] = {}
    yield changes
    after = snapshot(target, fields)
    changes.update(
        {
            key: {"before": before.get(key), "after": value}
            for key, value in after.items()
            if before.get(key) != value
        }
    )
    if changes:
        record(action, actor=actor, target_type=target_type, target_id=target.id, changes=changes)


def list_entries(
    *,
    page: int,
    page_size: int,
    actor_id: int | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page:
    stmt = select(AuditLog).order_by(AuditLog.id.desc())
    if actor_id is not None:
        stmt = stmt.where(AuditLog.actor_id == actor_id)
    if action is not None:
        stmt = stmt.where(AuditLog.action == action)
    if target_type is not None:
        stmt = stmt.where(AuditLog.target_type == target_type)
    if target_id is not None:
        stmt = stmt.where(AuditLog.target_id == target_id)
    if since is not None:
        stmt = stmt.where(AuditLog.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditLog.created_at <= until)
    return paginate(stmt, page, page_size)


def get_entry(entry_id: int) -> AuditLog:
    return get_or_404(AuditLog, entry_id)
