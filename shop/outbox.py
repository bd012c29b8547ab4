"""Transactional outbox: side effects are rows written in the caller's unit of work.

After commit the web process hands new messages to RQ (or, without Redis, runs them inline).
A message is written already marked relayed, so the hand-over costs no second transaction; if
RQ refuses it, the mark is cleared and the scheduler's relay sends it at its next tick, and if
the process dies in between, the relay sends it once the mark is HAND_OVER_LEASE old and RQ
has no job for it. So a Redis outage at commit time, or a crash, loses nothing. A message is
deleted in the transaction that handles it, under a row lock, so a retried or doubly-relayed
job runs its side effect once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from rq.job import Job
from sqlalchemy import JSON, String, Text, func, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.utils import import_string

from shop.db import Base, after_commit, insert_loaded, unit_of_work, uow_state, utcnow
from shop.queues import enqueue, handing_over, redis_connection

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
# A message handed over this long ago whose job RQ does not have was lost: send it again.
HAND_OVER_LEASE = timedelta(seconds=30)
# A message handed over this long ago and still here is sent again, whatever RQ holds.
RELAY_AGAIN_AFTER = timedelta(minutes=10)


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    relayed_at: Mapped[datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)


def add(task: Callable[..., Any], **payload: Any) -> None:
    """Record `task(**payload)` to run once the current unit of work commits."""
    message = OutboxMessage(
        task=f"{task.__module__}.{task.__qualname__}",
        payload=payload,
        # Written as handed over when it will be (one commit); else the relay sends it.
        relayed_at=utcnow() if handing_over() else None,
    )
    insert_loaded([message])
    state = uow_state()
    if "outbox" not in state:
        messages: list[OutboxMessage] = []
        state["outbox"] = messages
        after_commit(lambda: _dispatch(messages))
    state["outbox"].append(message)


def _dispatch(messages: list[OutboxMessage]) -> None:
    if redis_connection() is None:
        for message_id in [m.id for m in messages]:
            try:
                process(message_id)
            except Exception:
                log.exception("outbox message %s failed; it stays for a retry", message_id)
        return
    ids = [m.id for m in messages if m.relayed_at is not None]  # the rest wait for the relay
    for index, message_id in enumerate(ids):
        if not handing_over():  # Redis failed since (another hand-over or bump): the relay
            _unmark(ids[index:])
            return
        try:
            enqueue(process, message_id, job_id=_job_id(message_id))
        except Exception:
            log.warning("could not hand outbox messages %s to RQ now", ids[index:], exc_info=True)
            _unmark(ids[index:])
            return


def _unmark(ids: list[int]) -> None:
    """Leave messages RQ refused to the relay's next tick."""
    try:
        with unit_of_work() as session:
            session.execute(
                update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(relayed_at=None)
            )
    except Exception:  # the relay still sends them once their mark is old
        log.exception("could not clear the relay mark of outbox messages %s", ids)


def process(message_id: int) -> None:
    """The RQ job: run one message's task and delete it, once."""
    try:
        with unit_of_work() as session:
            message = session.get(OutboxMessage, message_id, with_for_update=True)
            if message is None:
                return  # already handled
            import_string(message.task)(**message.payload)
            session.delete(message)
    except Exception as error:
        with unit_of_work() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id)
                .values(attempts=OutboxMessage.attempts + 1, last_error=repr(error)[:2000])
            )
        raise


def _job_id(message_id: int) -> str:
    return f"outbox-{message_id}"


def relay(limit: int = 500) -> int:
    """Hand unsent (or lost) messages to RQ; run by the scheduler every few seconds.

    A message marked handed over more than HAND_OVER_LEASE ago whose job RQ does not have
    was lost (the process died, or Redis refused, between commit and hand-over): it goes
    again now. One whose job exists is queued, running or waiting for a retry, and is left
    alone, unless it was handed over RELAY_AGAIN_AFTER ago (then it goes again anyway)."""
    connection = redis_connection()
    if connection is None:
        return 0
    with unit_of_work() as session:
        now = utcnow()
        candidates = session.scalars(
            select(OutboxMessage)
            .where(
                or_(
                    OutboxMessage.relayed_at.is_(None),
                    OutboxMessage.relayed_at < now - HAND_OVER_LEASE,
                ),
                OutboxMessage.attempts < MAX_ATTEMPTS,
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        pipe = connection.pipeline(transaction=False)
        for message in candidates:
            pipe.exists(Job.key_for(_job_id(message.id)))
        known = pipe.execute() if candidates else []
        messages = [
            message
            for message, exists in zip(candidates, known, strict=True)
            if not exists
            or message.relayed_at is None
            or message.relayed_at < now - RELAY_AGAIN_AFTER
        ]
        for message in messages:
            enqueue(process, message.id, job_id=_job_id(message.id))
            message.relayed_at = now
    if messages:
        current_app.logger.info("relayed %d outbox messages", len(messages))
    return len(messages)
