"""Inventory API: ledger, manual movements, purchase orders, low stock, notifications."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import LOCATION, Blueprint
from shop.db import Page
from shop.inventory import ledger, low_stock, notifications, purchase_orders
from shop.inventory.models import Notification, PurchaseOrder
from shop.inventory.schemas import (
    LowStockItemSchema,
    MovementCreate,
    MovementCreateSchema,
    MovementQueryArgsSchema,
    MovementSchema,
    NotificationQueryArgsSchema,
    NotificationSchema,
    PurchaseOrderCreate,
    PurchaseOrderQueryArgsSchema,
    PurchaseOrderSchema,
)
from shop.products.models import StockMovement
from shop.schemas import PageArgsSchema, page_of
from shop.security import Role

blp = Blueprint("inventory", __name__, url_prefix="/api/v1", description="Inventory")
notifications_blp = Blueprint(
    "notifications", __name__, url_prefix="/api/v1", description="Staff notifications"
)


@blp.route("/inventory/transactions")
class Movements(MethodView):
    @blp.auth_required(Role.STAFF)
    @blp.arguments(MovementQueryArgsSchema, location="query")
    @blp.response(200, page_of(MovementSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """The stock ledger, newest first"""
        return ledger.list_movements(**args)

    @blp.auth_required(Role.STAFF, Role.SELLER)
    @blp.arguments(MovementCreateSchema)
    @blp.errors(404, 409)
    @blp.response(201, MovementSchema)
    def post(self, data: MovementCreate) -> StockMovement:
        """Record a manual movement (IN, OUT, ADJUSTMENT, RETURN, DAMAGE); a seller, of their
        own products only"""
        return ledger.record_movement(current_user, data)


@blp.route("/inventory/purchase-orders")
class PurchaseOrders(MethodView):
    @blp.auth_required(Role.STAFF)
    @blp.arguments(PurchaseOrderQueryArgsSchema, location="query")
    @blp.response(200, page_of(PurchaseOrderSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """List purchase orders, newest first"""
        return purchase_orders.list_purchase_orders(**args)

    @blp.auth_required(Role.STAFF)
    @blp.arguments(PurchaseOrderSchema)
    @blp.idempotent
    @blp.errors(409)
    @blp.response(201, PurchaseOrderSchema, headers=LOCATION)
    def post(self, data: PurchaseOrderCreate) -> tuple[PurchaseOrder, dict[str, str]]:
        """Create a purchase order: received at once (default) or ordered"""
        order = purchase_orders.create_purchase_order(current_user, data)
        return order, {"Location": f"/api/v1/inventory/purchase-orders/{order.id}"}


@blp.route("/inventory/purchase-orders/<int:order_id>")
class PurchaseOrderById(MethodView):
    @blp.auth_required(Role.STAFF)
    @blp.errors(404)
    @blp.response(200, PurchaseOrderSchema)
    def get(self, order_id: int) -> PurchaseOrder:
        """Get a purchase order"""
        return purchase_orders.get_purchase_order(order_id)

    @blp.auth_required(Role.ADMIN)
    @blp.errors(404, 409)
    @blp.response(204)
    def delete(self, order_id: int) -> None:
        """Delete a purchase order; a received one's stock is taken back (409 if it cannot be)"""
        purchase_orders.delete_purchase_order(current_user, order_id)


@blp.route("/inventory/purchase-orders/<int:order_id>/receive")
class ReceivePurchaseOrder(MethodView):
    @blp.auth_required(Role.STAFF)
    @blp.errors(404, 409)
    @blp.response(200, PurchaseOrderSchema)
    def post(self, order_id: int) -> PurchaseOrder:
        """Receive an ordered purchase order: stock goes up (PURCHASE entries)"""
        return purchase_orders.receive_purchase_order(current_user, order_id)


@blp.route("/inventory/purchase-orders/<int:order_id>/cancel")
class CancelPurchaseOrder(MethodView):
    @blp.auth_required(Role.STAFF)
    @blp.errors(404, 409)
    @blp.response(200, PurchaseOrderSchema)
    def post(self, order_id: int) -> PurchaseOrder:
        """Cancel an ordered (not yet received) purchase order"""
        return purchase_orders.cancel_purchase_order(current_user, order_id)


@blp.route("/inventory/low-stock")
class LowStock(MethodView):
    @blp.auth_required(Role.STAFF)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_of(LowStockItemSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """Products (or variants) at or below their low-stock threshold, lowest first"""
        return low_stock.list_low_stock(**args)


@notifications_blp.route("/notifications")
class Notifications(MethodView):
    @notifications_blp.auth_required(Role.STAFF)
    @notifications_blp.arguments(NotificationQueryArgsSchema, location="query")
    @notifications_blp.response(200, page_of(NotificationSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """Low-stock notifications, newest first"""
        return notifications.list_notifications(**args)


@notifications_blp.route("/notifications/<int:notification_id>")
class NotificationById(MethodView):
    @notifications_blp.auth_required(Role.STAFF)
    @notifications_blp.errors(404)
    @notifications_blp.response(200, NotificationSchema)
    def get(self, notification_id: int) -> Notification:
        """Get a notification"""
        return notifications.get_notification(notification_id)

    @notifications_blp.auth_required(Role.ADMIN)
    @notifications_blp.errors(404)
    @notifications_blp.response(204)
    def delete(self, notification_id: int) -> None:
        """Delete a notification"""
        notifications.delete_notification(current_user, notification_id)


@notifications_blp.route("/notifications/<int:notification_id>/ack")
class AcknowledgeNotification(MethodView):
    @notifications_blp.auth_required(Role.STAFF)
    @notifications_blp.errors(404)
    @notifications_blp.response(200, NotificationSchema)
    def post(self, notification_id: int) -> Notification:
        """Acknowledge a notification (idempotent)"""
        return notifications.acknowledge_notification(current_user, notification_id)
