"""The event log: one row per public event, written in the transaction of its change."""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, func, true
from sqlalchemy.orm import Mapped, mapped_column

from shop.db import Base, TimestampMixin


class EventRecord(Base):
    """`txid` is the writing transaction's id (PostgreSQL's xid8; 0 on SQLite, whose writers
    commit one at a time). The feed's order is (txid, id): see events.log for why."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_position", "txid", "id"),
        Index("ix_events_user_position", "user_id", "txid", "id"),
        Index("ix_events_type_position", "type", "txid", "id"),
    )

    # BIGINT on PostgreSQL; SQLite numbers only an INTEGER PRIMARY KEY by itself.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(64))
    # Whose event it is (the customer of the order); None: staff only.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)

    @property
    def position(self) -> str:
        """The public id: (txid, id) as 32 digits, 16 each: opaque, and increasing whether
        compared as text or as a number."""
        return f"{self.txid:016d}{self.id:016d}"

    @staticmethod
    def parse_position(value: str) -> tuple[int, int]:
        """(txid, id) of a public id (one that matched POSITION_PATTERN)."""
        return int(value[:16]), int(value[16:])


POSITION_PATTERN = re.compile(r"^[0-9]{32}$")  # with a length of 32: no newline after it


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookEndpoint(TimestampMixin, Base):
    """A receiver of events. `secret` signs (Standard Webhooks); after a rotation the previous
    one signs too until `previous_secret_expires_at`. `failure_count`: attempts failed in a row."""

    __tablename__ = "webhook_endpoints"
    label: ClassVar[str] = "Webhook"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)  # types, or ["*"]
    description: Mapped[str] = mapped_column(String(500), default="", server_default="")
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None]
    failure_count: Mapped[int] = mapped_column(default=0, server_default="0")

    def wants(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events


class WebhookDelivery(Base):
    """One event sent (and resent) to one endpoint: `body` is the event as JSON, the same on
    every attempt; `next_attempt_at` is when it is due (while in flight: when it is due
    again if its job was lost)."""

    __tablename__ = "webhook_deliveries"
    label: ClassVar[str] = "Delivery"
    __table_args__ = (
        Index("uq_webhook_deliveries_endpoint_event", "endpoint_id", "event_id", unique=True),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(String(1024))
    last_error: Mapped[str | None] = mapped_column(String(1024))
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WebhookCursor(Base):
    """How far the fan-out has read the event log (one row)."""

    __tablename__ = "webhook_cursor"

    id: Mapped[int] = mapped_column(primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int] = mapped_column(BigInteger)
