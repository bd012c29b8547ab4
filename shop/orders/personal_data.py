"""Orders' part of a user's personal data (shop.privacy): addresses, the cart, and orders
(guest orders the account took over too) with their lines, history, payments, refunds,
returns and shipments.

Erasing deletes the addresses and the cart. Orders stay, for accounting (their totals count in
the reports as before), with the anonymised user; the email a guest order was placed with is
cleared. An order keeps its own copy of the shipping address (`orders.shipping_address`, not a
reference to an address row), and that copy is kept: it is what the invoice was issued to."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import delete, select, update

from shop import privacy
from shop.db import db
from shop.orders import cart as carts
from shop.orders.billing_models import Refund
from shop.orders.models import Address, Cart, CartItem, Order, Payment
from shop.orders.payment_schemas import PaymentSchema
from shop.orders.refund_schemas import RefundSchema
from shop.orders.return_models import Return
from shop.orders.return_schemas import ReturnSchema
from shop.orders.schemas import AddressSchema, OrderSchema
from shop.orders.shipment_models import Shipment
from shop.orders.shipment_schemas import ShipmentSchema


def _export(user_id: int) -> dict[str, Any]:
    """A fixed number of statements however many orders (their lines, history and refunds'
    lines are read per kind, for every order at once)."""
    addresses = db.session.scalars(
        select(Address).where(Address.user_id == user_id).order_by(Address.id)
    )
    cart = db.session.scalars(
        select(CartItem).join(Cart).where(Cart.user_id == user_id).order_by(CartItem.id)
    )
    orders = list(
        db.session.scalars(select(Order).where(Order.user_id == user_id).order_by(Order.id))
    )
    payments: dict[int, list[Payment]] = defaultdict(list)
    refunds: dict[int, list[Refund]] = defaultdict(list)
    returns: dict[int, list[Return]] = defaultdict(list)
    shipments: dict[int, list[Shipment]] = defaultdict(list)
    if orders:
        ids = [order.id for order in orders]
        for payment in db.session.scalars(
            select(Payment).where(Payment.order_id.in_(ids)).order_by(Payment.id)
        ):
            payments[payment.order_id].append(payment)
        for refund in db.session.scalars(
            select(Refund).where(Refund.order_id.in_(ids)).order_by(Refund.id)
        ):
            refunds[refund.order_id].append(refund)
        for return_ in db.session.scalars(
            select(Return).where(Return.order_id.in_(ids)).order_by(Return.id)
        ):
            returns[return_.order_id].append(return_)
        for shipment in db.session.scalars(
            select(Shipment).where(Shipment.order_id.in_(ids)).order_by(Shipment.id)
        ):
            shipments[shipment.order_id].append(shipment)
    dumped = OrderSchema(many=True).dump(orders)
    for order, answer in zip(orders, dumped, strict=True):
        answer["payments"] = PaymentSchema(many=True).dump(payments[order.id])
        answer["refunds"] = RefundSchema(many=True).dump(refunds[order.id])
        answer["returns"] = ReturnSchema(many=True).dump(returns[order.id])
        answer["shipments"] = ShipmentSchema(many=True).dump(shipments[order.id])
    return {
        "addresses": AddressSchema(many=True).dump(addresses),
        "cart": [
            {
                "product_id": line.product_id,
                "variant_id": line.variant_id,
                "quantity": line.quantity,
            }
            for line in cart
        ],
        "orders": dumped,
    }


def _erase(erasure: privacy.Erasure) -> None:
    user_id = erasure.user_id
    db.session.execute(delete(Address).where(Address.user_id == user_id))
    cart = db.session.scalar(select(Cart).where(Cart.user_id == user_id))
    if cart is not None:
        carts.empty(cart)
        db.session.execute(delete(Cart).where(Cart.id == cart.id))
    db.session.execute(
        update(Order)
        .where(Order.user_id == user_id, Order.guest_email.is_not(None))
        .values(guest_email=None)
    )


STAFF_WORK = "an act of the user as staff, on someone else's order (the audit entries record it"
PERSONAL_DATA = privacy.Contributor(
    # A return is asked for by the order's owner (or staff for them): exported with the order.
    exports=("addresses.user_id", "carts.user_id", "orders.user_id", "returns.requested_by"),
    export=_export,
    erase=_erase,
    not_exported={
        "order_status_history.changed_by": f"{STAFF_WORK}); on their own orders it is in "
        "orders[].status_history",
        "payments.recorded_by": f"{STAFF_WORK})",
        "refunds.created_by": f"{STAFF_WORK})",
        "returns.decided_by": f"{STAFF_WORK})",
        "shipments.created_by": f"{STAFF_WORK}); the shipments are in orders[].shipments",
        "shipment_events.recorded_by": f"{STAFF_WORK}); the events are in orders[].shipments",
    },
)
