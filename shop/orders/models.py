"""Cart, addresses, orders with their lines, history and payments, idempotency keys."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    false,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shop.db import MONEY, Base, TimestampMixin


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset(
        {OrderStatus.PROCESSING, OrderStatus.CANCELLED, OrderStatus.REFUNDED}
    ),
    OrderStatus.PROCESSING: frozenset(
        {OrderStatus.SHIPPED, OrderStatus.CANCELLED, OrderStatus.REFUNDED}
    ),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED, OrderStatus.REFUNDED}),
    OrderStatus.DELIVERED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}
SALE_STATUSES = (
    OrderStatus.PAID,
    OrderStatus.PROCESSING,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
)


class PaymentStatus(enum.StrEnum):
    UNPAID = "unpaid"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    REFUNDED = "refunded"


class PaymentOutcome(enum.StrEnum):
    """Payment.status: what happened to one payment attempt."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # Money the provider took that does not match what the order owed: not counted as paid.
    MISMATCHED = "mismatched"


class WebhookOutcome(enum.StrEnum):
    """What a provider's event did: counted, or a repeat of one already counted."""

    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # not about a payment of shop's (another event type, another order)


class PaymentMethod(enum.StrEnum):
    CASH = "cash"
    CARD = "card"
    BANK_TRANSFER = "bank_transfer"
    PROVIDER = "provider"
    STRIPE = "stripe"
    OTHER = "other"


class Cart(Base):
    """A signed-in user's cart (one each, made on first use) or a guest's, known by the
    SHA-256 of the token its client holds (the token itself is never stored)."""

    __tablename__ = "carts"
    label: ClassVar[str] = "Cart"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (token_hash IS NULL)", name="one_owner"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Refreshed at most once every CART_TOUCH_SECONDS; guest carts idle CART_IDLE_DAYS go.
    last_used_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)


class CartItem(TimestampMixin, Base):
    __tablename__ = "cart_items"
    label: ClassVar[str] = "Cart line"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_variants.id", ondelete="CASCADE")
    )
    quantity: Mapped[int]


Index(
    "uq_cart_items_line",
    CartItem.cart_id,
    CartItem.product_id,
    func.coalesce(CartItem.variant_id, 0),
    unique=True,
)


class CartCoupon(Base):
    """The coupon a cart holds (checked again at checkout)."""

    __tablename__ = "cart_coupons"

    cart_id: Mapped[int] = mapped_column(
        ForeignKey("carts.id", ondelete="CASCADE"), primary_key=True
    )
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id", ondelete="CASCADE"), index=True)


class Address(TimestampMixin, Base):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(50), default="", server_default="")
    line1: Mapped[str] = mapped_column(String(200))
    line2: Mapped[str] = mapped_column(String(200), default="", server_default="")
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(100), default="", server_default="")
    postal_code: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    phone: Mapped[str] = mapped_column(String(32), default="", server_default="")
    is_default: Mapped[bool] = mapped_column(default=False, server_default=false())


# One default address per user, enforced by the database.
Index(
    "uq_addresses_default",
    Address.user_id,
    unique=True,
    postgresql_where=Address.is_default.is_(True),
    sqlite_where=Address.is_default.is_(True),
)


class Order(TimestampMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(f"status IN {tuple(s.value for s in OrderStatus)}", name="status"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        CheckConstraint("user_id IS NOT NULL OR guest_email IS NOT NULL", name="has_customer"),
        Index("ix_orders_user_created", "user_id", "created_at"),
        # The guest orders an email's account takes over once verified.
        Index(
            "ix_orders_guest_email",
            func.lower(text("guest_email")),
            postgresql_where=text("user_id IS NULL"),
            sqlite_where=text("user_id IS NULL"),
        ),
        Index("ix_orders_status_created", "status", "created_at"),
        Index("ix_orders_created_at", "created_at"),
        # The staff's list of orders owing a refund (GET /orders?needs_refund=true).
        # A coupon deleted sets its orders' coupon_id to NULL through this.
        Index(
            "ix_orders_coupon_user",
            "coupon_id",
            "user_id",
            postgresql_where=text("coupon_id IS NOT NULL"),
            sqlite_where=text("coupon_id IS NOT NULL"),
        ),
        # A shipping method deleted sets its orders' shipping_method_id to NULL through this.
        Index(
            "ix_orders_shipping_method",
            "shipping_method_id",
            postgresql_where=text("shipping_method_id IS NOT NULL"),
            sqlite_where=text("shipping_method_id IS NOT NULL"),
        ),
        Index(
            "ix_orders_refund_due",
            "created_at",
            postgresql_where=text("refund_due > 0"),
            sqlite_where=text("refund_due > 0"),
        ),
    )

    # `access_key`: a guest's key, in the answer of the POST that placed it only (not a column).
    __allow_unmapped__ = True
    access_key: str | None = None

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL: a guest's, until an account verifies guest_email (then both are set).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    guest_email: Mapped[str | None] = mapped_column(String(254))
    access_key_hash: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of the key
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.PENDING.value)
    payment_status: Mapped[str] = mapped_column(String(16), default=PaymentStatus.UNPAID.value)
    subtotal: Mapped[Decimal] = mapped_column(MONEY)  # the lines before any discount
    discount: Mapped[Decimal] = mapped_column(MONEY, default=0, server_default="0")
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupons.id", ondelete="SET NULL"))
    coupon_code: Mapped[str | None] = mapped_column(String(64))  # kept if the coupon goes
    shipping_cost: Mapped[Decimal] = mapped_column(MONEY)
    # The shipping method chosen (null: the flat rate), and its name and carrier then.
    shipping_method_id: Mapped[int | None] = mapped_column(
        ForeignKey("shipping_methods.id", ondelete="SET NULL")
    )
    shipping_method_name: Mapped[str | None] = mapped_column(String(100))
    shipping_carrier: Mapped[str | None] = mapped_column(String(100))
    tax: Mapped[Decimal] = mapped_column(MONEY)
    # [{name, rate, amount}]: the destination's rate and what it came to (amounts as strings).
    tax_lines: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list, server_default="[]")
    total: Mapped[Decimal] = mapped_column(MONEY)
    amount_paid: Mapped[Decimal] = mapped_column(MONEY, default=0, server_default="0")
    currency: Mapped[str] = mapped_column(String(3))
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSON)
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    reminder_sent_at: Mapped[datetime | None]
    # Money received that must go back: a payment that arrived after the order was cancelled.
    refund_due: Mapped[Decimal] = mapped_column(MONEY, default=0, server_default="0")
    # The sum of its refunds (POST /orders/{id}/refunds), kept with each one under the lock.
    amount_refunded: Mapped[Decimal] = mapped_column(MONEY, default=0, server_default="0")
    # INV-<year>-<6 digits>, gapless per year: given when the order becomes paid (invoices).
    invoice_number: Mapped[str | None] = mapped_column(String(20), unique=True)
    invoiced_at: Mapped[datetime | None]

    items: Mapped[list[OrderItem]] = relationship(
        order_by="OrderItem.id", lazy="selectin", cascade="all, delete-orphan"
    )
    status_history: Mapped[list[OrderStatusChange]] = relationship(
        order_by="OrderStatusChange.id", lazy="selectin", cascade="all, delete-orphan"
    )

    @property
    def number(self) -> str:
        """Human order number, e.g. ORD-20261122-000042 (the id is its last part)."""
        return f"ORD-{self.created_at:%Y%m%d}-{self.id:06d}"

    @property
    def shipping_method(self) -> dict[str, Any] | None:
        """{id, name, carrier} of the method it ships by, as named then; None: the flat rate."""
        if self.shipping_method_name is None:
            return None
        return {"id": self.shipping_method_id, "name": self.shipping_method_name,
                "carrier": self.shipping_carrier}  # fmt: skip


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    # RESTRICT: a product that was ordered is deactivated, never deleted.
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="RESTRICT"), index=True
    )
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_variants.id", ondelete="RESTRICT")
    )
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(400))
    unit_price: Mapped[Decimal] = mapped_column(MONEY)  # charged
    list_price: Mapped[Decimal] = mapped_column(MONEY)  # off sale (its compare-at price)
    quantity: Mapped[int]
    discount: Mapped[Decimal] = mapped_column(MONEY, default=0, server_default="0")
    line_total: Mapped[Decimal] = mapped_column(MONEY)  # unit_price x quantity - discount
    # Of line_total, rounded half up: added to it, or inside it with PRICES_INCLUDE_TAX.
    tax: Mapped[Decimal] = mapped_column(MONEY, default=0, server_default="0")


class OrderStatusChange(Base):
    __tablename__ = "order_status_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    changed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(server_default=func.now())


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    method: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16))  # PaymentOutcome
    reference: Mapped[str | None] = mapped_column(String(200))
    # The provider's event id: a webhook delivered twice is stored (and counted) once.
    provider_event_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PaymentIntent(Base):
    """A Stripe PaymentIntent made for an order (POST /orders/{id}/payment-intent): asked for
    again, the order's intent is read back, never made twice; a charge names its intent."""

    __tablename__ = "payment_intents"

    intent_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class StripeEvent(Base):
    """A Stripe event handled: one row per event id, so a replay (or two at once) acts once."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ProviderRefundStatus(enum.StrEnum):
    PENDING = "pending"  # written with its cause; the worker sends it
    SENT = "sent"  # the provider took it (provider_refund_id)
    SUCCEEDED = "succeeded"  # the provider says the money went back (charge.refunded)
    FAILED = "failed"  # the provider refused it: a person must refund it


class ProviderRefundReason(enum.StrEnum):
    CANCELLED = "order_cancelled"
    PAID_AFTER_CANCELLATION = "paid_after_cancellation"
    REQUESTED = "requested"
    AT_PROVIDER = "at_provider"  # made at the provider (its dashboard), learnt from its event


class ProviderRefund(TimestampMixin, Base):
    """Money of a provider payment sent back through the provider. Its amount counts in the
    order's refund_due from when it is written until the provider confirms it."""

    __tablename__ = "provider_refunds"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    payment_id: Mapped[int] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[Decimal] = mapped_column(MONEY)
    reason: Mapped[str] = mapped_column(String(32))  # ProviderRefundReason
    status: Mapped[str] = mapped_column(String(16))  # ProviderRefundStatus
    provider_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The refund (POST /orders/{id}/refunds) it sends; None: a cancellation's, or Stripe's own.
    refund_id: Mapped[int | None] = mapped_column(
        ForeignKey("refunds.id", ondelete="SET NULL"), index=True
    )
