"""Invoices: a number per year with no gap (INV-2026-000001), given in the transaction that
makes the order paid, and the PDF of a paid order (GET /orders/{id}/invoice).

The number comes from the year's counter row, `UPDATE ... SET last = last + 1 RETURNING
last`: the row stays locked until the paying transaction ends, so two payments at once take
consecutive numbers, and one that rolls back gives its number back with the counter. The
lock is taken after the order's (the only order anything takes them in)."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select, update

from shop.auth.models import User
from shop.db import db, insert_ignoring_conflicts, table_of, utcnow
from shop.errors import Conflict
from shop.orders.billing_models import InvoiceCounter, Refund
from shop.orders.invoice_pdf import Invoice, Store, render
from shop.orders.models import Order, Payment, PaymentOutcome
from shop.orders.queries import readable_order


def assign_invoice_number(order: Order) -> None:
    """Give a locked order becoming paid its invoice number, in the caller's unit of work
    (status.transition to paid, whichever path pays it); one it has already is kept."""
    if order.invoice_number is not None:
        return
    now = utcnow()
    counters = table_of(InvoiceCounter)
    db.session.execute(insert_ignoring_conflicts(InvoiceCounter).values(year=now.year, last=0))
    last = db.session.scalar(
        update(counters)
        .where(counters.c.year == now.year)
        .values(last=counters.c.last + 1)
        .returning(counters.c.last)
    )
    order.invoice_number = f"INV-{now.year}-{last:06d}"
    order.invoiced_at = now


def invoice_pdf(reader: User | None, order_id: int, key: str | None) -> tuple[str, bytes]:
    """The invoice of an order its reader may see (queries.readable_order), as its number and
    PDF; an order never paid has none (409: no pro-forma)."""
    order = readable_order(reader, order_id, key)
    if order.invoice_number is None or order.invoiced_at is None:
        raise Conflict(f"Order {order.number} is not paid: it has no invoice yet.")
    payments = db.session.scalars(
        select(Payment)
        .where(Payment.order_id == order.id, Payment.status == PaymentOutcome.SUCCEEDED)
        .order_by(Payment.id)
    ).all()
    refunds = db.session.scalars(
        select(Refund).where(Refund.order_id == order.id).order_by(Refund.id)
    ).all()
    customer = db.session.get(User, order.user_id) if order.user_id is not None else None
    config = current_app.config
    store = Store(
        name=config["STORE_NAME"],
        address=config["STORE_ADDRESS"],
        email=config["STORE_EMAIL"],
        tax_id=config["STORE_TAX_ID"],
    )
    invoice = Invoice(
        store=store,
        order=order,
        customer_email=customer.email if customer is not None else order.guest_email or "",
        customer_name=" ".join(part for part in (customer.first_name, customer.last_name) if part)
        if customer is not None
        else "",
        payments=list(payments),
        refunds=list(refunds),
    )
    return order.invoice_number, render(invoice)
