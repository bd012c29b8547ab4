"""What the console shows, read through the domains' own services (reports, inventory, audit,
events, orders) and, for the two health panels, straight from RQ and the outbox table."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import func, select

from shop.audit.services import list_entries
from shop.auth.models import User
from shop.db import Page, db, paginate
from shop.events.models import DeliveryStatus, WebhookDelivery
from shop.events.webhooks import list_endpoints
from shop.inventory.low_stock import list_low_stock
from shop.orders.models import Order, OrderStatus
from shop.orders.queries import list_orders
from shop.orders.return_models import Return, ReturnStatus
from shop.outbox import OutboxMessage
from shop.queues import DEFAULT_QUEUE, redis_connection
from shop.reports.aggregates import today
from shop.reports.services import order_status_counts, sales_by_day, top_products

RANGES = (30, 90, 365)  # the dashboard's choices of days
TO_SHIP = (OrderStatus.PAID, OrderStatus.PROCESSING)
PAGE_SIZE = 50


def dashboard(days: int) -> dict[str, Any]:
    last = today()
    first = last - timedelta(days=days - 1)
    by_day = sales_by_day(first, last)
    sales = {
        "days": [d.isoformat() for d in by_day],
        "revenue": [float(v["revenue"]) for v in by_day.values()],
        "orders": [v["orders"] for v in by_day.values()],
    }
    top = top_products(first, last, by="revenue", limit=10)["rows"]
    status = order_status_counts(first, last)["counts"]
    return {
        "days": days,
        "first": first,
        "last": last,
        "sales": sales,
        "revenue_total": sum((v["revenue"] for v in by_day.values()), Decimal("0.00")),
        "orders_total": sum(v["orders"] for v in by_day.values()),
        "top": top,
        "top_chart": {
            "labels": [r["name"] or f"#{r['product_id']}" for r in top],
            "values": [float(r["revenue"]) for r in top],
        },
        "status": status,
        "status_chart": {"labels": list(status), "values": list(status.values())},
        "low_stock": list_low_stock(page=1, page_size=10),
        "queues": queue_health(),
        "webhooks": webhook_health(),
        "audit": list_entries(page=1, page_size=15),
    }


def queue_health() -> dict[str, Any]:
    """RQ's default queue (depth, started, failed, workers) and the outbox backlog."""
    backlog, oldest = db.session.execute(
        select(func.count(OutboxMessage.id), func.min(OutboxMessage.created_at))
    ).one()
    health: dict[str, Any] = {"outbox_backlog": backlog, "outbox_oldest": oldest, "redis": None}
    connection = redis_connection()
    if connection is None:
        health["redis"] = "not configured: jobs run inline after commit"
        return health
    try:
        queue = Queue(DEFAULT_QUEUE, connection=connection)
        health.update(
            depth=queue.count,
            started=StartedJobRegistry(queue=queue).count,
            failed=FailedJobRegistry(queue=queue).count,
            workers=[
                {"name": w.name, "state": w.get_state(), "heartbeat": w.last_heartbeat}
                for w in Worker.all(connection=connection)
            ],
        )
    except RedisError as error:
        health["redis"] = f"down: {error}"
    return health


def webhook_health() -> dict[str, Any]:
    """Each endpoint (active, consecutive failures) and the deliveries waiting or given up on
    (counted through ix_webhook_deliveries_due, whose first column is the status)."""
    waiting = (DeliveryStatus.PENDING.value, DeliveryStatus.FAILED.value)
    by_status = dict.fromkeys(waiting, 0)
    for status, count in db.session.execute(
        select(WebhookDelivery.status, func.count())
        .where(WebhookDelivery.status.in_(waiting))
        .group_by(WebhookDelivery.status)
    ):
        by_status[status] = count
    return {"endpoints": list_endpoints(1, 100).items, "deliveries": by_status}


def orders_to_ship(page: int) -> Page:
    """Paid orders and those being processed (some parcels out), oldest first: today's work
    (ix_orders_status_created)."""
    stmt = select(Order).where(Order.status.in_(TO_SHIP)).order_by(Order.created_at, Order.id)
    return paginate(stmt, page, PAGE_SIZE)


def order_number(order_id: int) -> str | None:
    order = db.session.get(Order, order_id)
    return order.number if order is not None else None


def refunds_owed(actor: User, page: int) -> dict[str, Any]:
    """Two lists. Money owed back: orders with refund_due > 0 (paid after being cancelled, or
    a provider refund not confirmed yet; orders.queries.list_orders(needs_refund=True)).
    Returns received in full and not refunded yet (status `received`)."""
    returns = db.session.scalars(
        select(Return)
        .where(Return.status == ReturnStatus.RECEIVED)
        .order_by(Return.id)
        .limit(PAGE_SIZE)
    ).all()
    return {
        "orders": list_orders(actor, page=page, page_size=PAGE_SIZE, needs_refund=True),
        "returns": returns,
    }
