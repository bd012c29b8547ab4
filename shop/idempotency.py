"""Idempotency-Key for any write endpoint: a repeat with the same key and body gets the first
answer, byte for byte, and changes nothing (`Blueprint.idempotent` applies it to a view).

A key is claimed by INSERT ... ON CONFLICT DO NOTHING in the request's own unit of work: a
simultaneous twin waits for the first transaction and then replays its stored answer, and a
failed attempt rolls its claim back with everything else, so it does not burn the key. Keys
are scoped to the user (or, for a client without an account, to the `scope` its endpoint
names, such as a guest cart) and kept IDEMPOTENCY_KEY_TTL (24 h); the same key with another body, or
on another endpoint, is a 409.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, ForeignKey, Index, String, Text, delete, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from shop import privacy
from shop.db import Base, db, insert_ignoring_conflicts, unit_of_work, utcnow
from shop.errors import Conflict

MAX_KEY_LENGTH = 255


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        Index("uq_idempotency_keys_user_key", "user_id", "key", unique=True),
        Index("uq_idempotency_keys_scope_key", "scope", "key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scope: Mapped[str | None] = mapped_column(String(64))  # an anonymous client's ("cart:7")
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    endpoint: Mapped[str] = mapped_column(Text)  # "POST /api/v1/orders"
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the validated body
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    response_location: Mapped[str | None] = mapped_column(String(2048))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


@dataclass(frozen=True)
class Answer:
    """What the first request answered, replayed to its repeats."""

    status: int
    body: str
    location: str | None


def fingerprint(body: Any) -> str:
    """The body a key was first used with, as its schema loaded it (so key order, and fields
    left to their defaults, do not matter)."""
    canonical = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _mine(user_id: int | None, scope: str | None, key: str) -> tuple[Any, ...]:
    if scope is not None:
        return (IdempotencyKey.scope == scope, IdempotencyKey.key == key)
    return (IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)


def claim(
    user_id: int | None,
    key: str,
    endpoint: str,
    request_fingerprint: str,
    *,
    scope: str | None = None,
) -> Answer | None:
    """Claim `key` for this request (None), or return the earlier request's answer: the
    user's key, or with `scope` (and no user) that anonymous client's.

    Must run inside the request's unit of work. The INSERT waits while a concurrent request
    holds the same key uncommitted, so the second of two simultaneous requests sees the
    first one's stored answer.
    """
    now = utcnow()
    mine = _mine(user_id, scope, key)
    db.session.execute(delete(IdempotencyKey).where(*mine, IdempotencyKey.expires_at < now))
    claimed = db.session.scalar(
        insert_ignoring_conflicts(IdempotencyKey)
        .values(
            user_id=None if scope is not None else user_id,
            scope=scope,
            key=key,
            endpoint=endpoint,
            fingerprint=request_fingerprint,
            expires_at=now + current_app.config["IDEMPOTENCY_KEY_TTL"],
        )
        .returning(IdempotencyKey.id)
    )
    if claimed is not None:
        return None
    earlier = db.session.scalar(select(IdempotencyKey).where(*mine))
    if earlier is not None and earlier.endpoint != endpoint:
        raise Conflict(f"This Idempotency-Key was used for {earlier.endpoint}.")
    if earlier is not None and earlier.fingerprint != request_fingerprint:
        raise Conflict("This Idempotency-Key was used with another request body.")
    if earlier is None or earlier.response_body is None or earlier.response_status is None:
        raise Conflict("A request with this Idempotency-Key is still in progress.")
    return Answer(earlier.response_status, earlier.response_body, earlier.response_location)


def store(user_id: int | None, key: str, answer: Answer, *, scope: str | None = None) -> None:
    """Keep the answer of the request that claimed `key`, in its unit of work."""
    db.session.execute(
        update(IdempotencyKey)
        .where(*_mine(user_id, scope, key))
        .values(
            response_status=answer.status,
            response_body=answer.body,
            response_location=answer.location,
        )
    )


def purge_expired_keys() -> dict[str, int]:
    """The `purge-idempotency-keys` job."""
    with unit_of_work() as session:
        result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < utcnow()))
    return {"deleted": cast(CursorResult[Any], result).rowcount}


def _erase_keys(erasure: privacy.Erasure) -> None:
    db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.user_id == erasure.user_id))


# A user's keys hold copies of recent answers (an order, with its address): erased with them.
PERSONAL_DATA = privacy.Contributor(
    erase=_erase_keys,
    not_exported={
        "idempotency_keys.user_id": "stored answers to the user's writes of the last "
        "IDEMPOTENCY_KEY_TTL, whose content the other sections hold (deleted by the erasure)",
    },
)
