"""Shipments of an order (POST and GET /orders/{id}/shipments) and their tracking events
(POST /shipments/{id}/events by staff, POST /shipping/webhook by the carrier).

Everything here runs under the order's row lock (the first lock of the lock order), so two
shipments racing for the last units of a line cannot both take them (one 409), and an event
and a shipment of the same order never interleave. The order's status follows its parcels
through the status machine (status.transition: history, audit, bus events in one path): the
first parcel of a paid order makes it `processing`, the one that leaves no unit unshipped
makes it `shipped`, and the delivery that leaves every parcel delivered (with every unit
shipped) makes it `delivered`. The customer gets one email per parcel (with its tracking
number) instead of the machine's emails for the first two steps; the delivery is the
machine's own email. A carrier event is applied once: its id is unique in shipment_events.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import exists, func, select

from shop import bus, mail
from shop.audit.models import Action, Target
from shop.audit.services import record
from shop.auth.models import User
from shop.db import Page, db, insert_ignoring_conflicts, paginate, unit_of_work, utcnow
from shop.errors import Conflict, NotFound, Unauthorized, Unprocessable
from shop.orders.events import ShipmentCreated, ShipmentUpdated
from shop.orders.models import Order, OrderItem, OrderStatus, WebhookOutcome
from shop.orders.queries import get_order, lines_named, readable_order
from shop.orders.shipment_models import Shipment, ShipmentEvent, ShipmentItem, ShipmentStatus
from shop.orders.shipment_schemas import (
    CarrierEvent,
    CarrierWebhookResult,
    ShipmentCreate,
    ShipmentEventCreate,
    ShipmentLine,
)
from shop.orders.status import transition
from shop.security import signed_by

# A shipment may be made for these (shipped: marked so by hand, parcels not all recorded).
SHIPPABLE = (OrderStatus.PAID, OrderStatus.PROCESSING, OrderStatus.SHIPPED)
# How far ahead of our clock an event's `at` may be (a carrier's clock is not ours).
CLOCK_SKEW = timedelta(minutes=5)


def list_shipments(
    reader: User | None, order_id: int, key: str | None, *, page: int, page_size: int
) -> Page:
    """The shipments of an order its reader may see (queries.readable_order), oldest first."""
    order = readable_order(reader, order_id, key)
    stmt = select(Shipment).where(Shipment.order_id == order.id).order_by(Shipment.id)
    return paginate(stmt, page, page_size)


def create_shipment(actor: User, order_id: int, data: ShipmentCreate) -> Shipment:
    with unit_of_work():
        order = get_order(actor, order_id, for_update=True)
        if order.status not in SHIPPABLE:
            raise Conflict(
                f"Order {order.number} is {order.status}: only a paid or processing order ships."
            )
        left = _unshipped(order)
        lines = _shippable_lines(order, data.get("items"), left)
        number = data["tracking_number"]
        if db.session.scalar(select(exists().where(Shipment.tracking_number == number))):
            raise Conflict(
                f"Another shipment has the tracking number {number}.",
                errors={"tracking_number": ["Already used by another shipment."]},
            )
        shipment = Shipment(
            order_id=order.id,
            carrier=data["carrier"],
            tracking_number=number,
            status=ShipmentStatus.PENDING,
            created_by=actor.id,
            items=[ShipmentItem(order_item_id=item.id, quantity=q) for item, q in lines],
        )
        db.session.add(shipment)
        db.session.flush()
        order.tracking_number = number  # the order answers its newest parcel's
        record(
            Action.SHIPMENT_CREATED,
            actor=actor,
            target_type=Target.ORDER,
            target_id=order.id,
            changes={
                "shipment_id": shipment.id,
                "carrier": shipment.carrier,
                "tracking_number": number,
                "items": [{"order_item_id": i.id, "quantity": q} for i, q in lines],
            },
        )
        bus.publish(ShipmentCreated.of(order, shipment))
        sent = {item.id: q for item, q in lines}
        complete = all(left[item.id] == sent.get(item.id, 0) for item in order.items)
        note = f"shipment {shipment.id} ({shipment.carrier} {number})"
        if order.status == OrderStatus.PAID:
            transition(actor, order, OrderStatus.PROCESSING, note=note, notify=False)
        if complete and order.status == OrderStatus.PROCESSING:
            transition(
                actor,
                order,
                OrderStatus.SHIPPED,
                note=f"every unit shipped: {note}",
                tracking_number=number,
                notify=False,
            )
        _tell_customer(order, shipment, lines, complete)
    return shipment


def _unshipped(order: Order) -> dict[int, int]:
    """Each line's units that no shipment carries yet (one query)."""
    shipped: dict[int, int] = {
        item_id: int(units)
        for item_id, units in db.session.execute(
            select(ShipmentItem.order_item_id, func.sum(ShipmentItem.quantity))
            .join(Shipment, Shipment.id == ShipmentItem.shipment_id)
            .where(Shipment.order_id == order.id)
            .group_by(ShipmentItem.order_item_id)
        )
    }
    return {item.id: item.quantity - shipped.get(item.id, 0) for item in order.items}


def _shippable_lines(
    order: Order, wanted: list[ShipmentLine] | None, left: dict[int, int]
) -> list[tuple[OrderItem, int]]:
    """The lines and units of the parcel: those named (a line of another order is a 422,
    more units than left to ship a 409), or every unit left (none left: a 409)."""
    if wanted is None:
        lines = [(item, left[item.id]) for item in order.items if left[item.id] > 0]
        if not lines:
            raise Conflict(f"Every unit of order {order.number} has shipped already.")
        return lines
    items = lines_named(order, [w["order_item_id"] for w in wanted])
    over = [
        f"line {w['order_item_id']} ({items[w['order_item_id']].sku}): at most "
        f"{left[w['order_item_id']]}"
        for w in wanted
        if w["quantity"] > left[w["order_item_id"]]
    ]
    if over:
        raise Conflict(
            "More units than ordered minus shipped: " + "; ".join(over) + ".",
            errors={"items": over},
        )
    return sorted(((items[w["order_item_id"]], w["quantity"]) for w in wanted),
                  key=lambda line: line[0].id)  # fmt: skip


def add_event(actor: User, shipment_id: int, data: ShipmentEventCreate) -> Shipment:
    """Staff record a step of a shipment's journey."""
    with unit_of_work():
        order_id = db.session.scalar(select(Shipment.order_id).where(Shipment.id == shipment_id))
        if order_id is None:
            raise NotFound(f"Shipment {shipment_id} does not exist.")
        order = get_order(actor, order_id, for_update=True)
        shipment = _apply_event(actor, order, shipment_id, data, carrier_event_id=None)
        assert shipment is not None  # only a carrier's event can be a repeat
    return shipment


def verify_carrier_signature(raw_body: bytes, header: str | None) -> None:
    """The payment webhook's rule with the carrier's secret (payments.verify_webhook_signature)."""
    if not signed_by(current_app.config["SHIPPING_WEBHOOK_SECRET"], raw_body, header):
        raise Unauthorized("The webhook signature is missing or wrong.")


def handle_carrier_event(data: CarrierEvent) -> CarrierWebhookResult:
    """The carrier's signed event; the same event_id twice (or at once) counts once."""
    with unit_of_work():
        found = db.session.execute(
            select(Shipment.id, Shipment.order_id).where(
                Shipment.tracking_number == data["tracking_number"]
            )
        ).first()
        if found is None:
            raise NotFound(f"No shipment {data['tracking_number']}.")
        order = db.session.get(Order, found.order_id, with_for_update=True, populate_existing=True)
        assert order is not None  # a shipment's order is deleted with it
        shipment = _apply_event(None, order, found.id, data, carrier_event_id=data["event_id"])
    outcome = WebhookOutcome.DUPLICATE if shipment is None else WebhookOutcome.RECORDED
    return {"result": outcome, "shipment_id": found.id}


def _apply_event(
    actor: User | None,
    order: Order,
    shipment_id: int,
    data: ShipmentEventCreate | CarrierEvent,
    *,
    carrier_event_id: str | None,
) -> Shipment | None:
    """Write the event (None: the carrier's event was applied before) and move the shipment,
    and the order when it was the last delivery, on. The order's row is locked."""
    now = utcnow()
    at = data.get("at") or now
    if at > now + CLOCK_SKEW:
        raise Unprocessable("The event is in the future.", errors={"at": ["In the future."]})
    event_id = db.session.scalar(
        insert_ignoring_conflicts(ShipmentEvent)
        .values(
            shipment_id=shipment_id,
            status=data["status"],
            location=data.get("location"),
            note=data.get("note"),
            at=at,
            carrier_event_id=carrier_event_id,
            recorded_by=actor.id if actor else None,
        )
        .returning(ShipmentEvent.id)
    )
    if event_id is None:
        return None
    # Read after the insert (under the order's lock): its events hold the new one.
    shipment = db.session.get(Shipment, shipment_id, populate_existing=True)
    assert shipment is not None
    previous = ShipmentStatus(shipment.status)
    if previous is ShipmentStatus.DELIVERED:
        raise Conflict(f"Shipment {shipment.id} has been delivered: no event may follow it.")
    event = next(e for e in shipment.events if e.id == event_id)
    # Delivered is final; any other step moves the status only if no newer one is known
    # (carriers send events late and out of order: an older one is history only).
    if event.status == ShipmentStatus.DELIVERED or shipment.events[-1] is event:
        shipment.status = event.status
    record(
        Action.SHIPMENT_UPDATED,
        actor=actor,
        target_type=Target.ORDER,
        target_id=order.id,
        changes={
            "shipment_id": shipment.id,
            "status": {"before": previous.value, "after": shipment.status},
            "event": event.status,
            "location": event.location,
            "at": event.at.isoformat(),
            "carrier_event_id": carrier_event_id,
        },
    )
    bus.publish(ShipmentUpdated.of(order, shipment, previous, event))
    if shipment.status == ShipmentStatus.DELIVERED:
        _deliver_when_all_delivered(actor, order)
    return shipment


def _deliver_when_all_delivered(actor: User | None, order: Order) -> None:
    """A shipped order whose every parcel is delivered, and every unit in one, is delivered."""
    if order.status != OrderStatus.SHIPPED:
        return
    db.session.flush()
    undelivered = db.session.scalar(
        select(
            exists().where(
                Shipment.order_id == order.id, Shipment.status != ShipmentStatus.DELIVERED
            )
        )
    )
    if undelivered or any(units > 0 for units in _unshipped(order).values()):
        return
    transition(actor, order, OrderStatus.DELIVERED, note="every shipment delivered")


def _tell_customer(
    order: Order, shipment: Shipment, lines: list[tuple[OrderItem, int]], complete: bool
) -> None:
    customer = db.session.get(User, order.user_id) if order.user_id is not None else None
    to = customer.email if customer is not None else order.guest_email
    if to:
        mail.queue_email(
            to,
            "shipment_created",
            user=customer,
            order=order,
            shipment=shipment,
            lines=lines,
            complete=complete,
        )
