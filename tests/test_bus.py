"""The domain event bus: one registry of typed events, subscribers in the publisher's
transaction or durable after commit through the outbox, nothing left by a rollback."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from shop import bus
from shop.audit.models import Action, AuditLog
from shop.audit.services import record
from shop.bus import EVENT_TYPES, Event, Subscriber
from shop.db import db, unit_of_work
from shop.outbox import OutboxMessage


@dataclass(frozen=True)
class Parcel(Event, name="test.parcel"):
    parcel_id: int
    weight: Decimal
    sent_at: datetime
    note: str | None


delivered: list[Parcel] = []


def deliver_parcel(event: Parcel) -> None:
    """A durable subscriber (module level, so the worker can import it)."""
    delivered.append(event)


def audit_parcel(event: Parcel) -> None:
    """An in-transaction subscriber: its write shares the publisher's fate."""
    record(Action.JOB_RUN, actor=None, changes={"parcel": event.parcel_id})


PARCEL = Parcel(
    parcel_id=7, weight=Decimal("1.50"), sent_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC), note=None
)


@pytest.fixture
def parcel_app(other_app):
    delivered.clear()
    app = other_app()
    bus.init_app(
        app,
        [
            Subscriber(Parcel, audit_parcel),
            Subscriber(
                Parcel, deliver_parcel, durable=True, when=lambda e: e.weight > Decimal("1")
            ),
        ],
    )
    return app


def count(app, model, *where):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_every_event_type_has_one_registered_name():
    assert EVENT_TYPES["test.parcel"] is Parcel
    for name in ("order.created", "order.status_changed", "order.cancelled", "stock.changed"):
        assert EVENT_TYPES[name].name == name
    with pytest.raises(TypeError, match="already"):

        @dataclass(frozen=True)
        class Again(Event, name="test.parcel"):
            pass


def test_payload_round_trips_through_json_types():
    payload = PARCEL.payload()
    assert payload == {
        "parcel_id": 7,
        "weight": "1.50",
        "sent_at": "2026-12-01T09:30:00+00:00",
        "note": None,
    }
    assert Parcel.from_payload(payload) == PARCEL


def test_publishing_outside_a_unit_of_work_is_refused(parcel_app):
    with parcel_app.app_context(), pytest.raises(RuntimeError, match="outside a unit of work"):
        bus.publish(PARCEL)


def test_subscribers_commit_with_the_change_and_durable_ones_run_after_it(parcel_app, run_jobs):
    with parcel_app.app_context(), unit_of_work():
        bus.publish(PARCEL)
        assert delivered == []  # not before the commit
    assert count(parcel_app, AuditLog, AuditLog.action == Action.JOB_RUN) == 1
    run_jobs()
    assert delivered == [PARCEL]
    assert count(parcel_app, OutboxMessage) == 0


def test_a_rolled_back_change_leaves_no_trace_of_its_events(parcel_app, run_jobs):
    with parcel_app.app_context(), pytest.raises(ZeroDivisionError), unit_of_work():
        bus.publish(PARCEL)
        _ = 1 / 0
    run_jobs()
    assert count(parcel_app, AuditLog) == 0
    assert count(parcel_app, OutboxMessage) == 0
    assert delivered == []


def test_when_filters_in_the_transaction_so_no_outbox_row_is_written(parcel_app):
    light = Parcel(parcel_id=8, weight=Decimal("0.20"), sent_at=PARCEL.sent_at, note="light")
    with parcel_app.app_context(), unit_of_work():
        bus.publish(light)
    assert count(parcel_app, OutboxMessage) == 0
    assert count(parcel_app, AuditLog) == 1
