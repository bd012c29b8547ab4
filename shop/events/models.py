"""The event log: one row per public event, written in the transaction of its change."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from shop.db import Base


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


POSITION_PATTERN = re.compile(r"\A\d{32}\Z")
