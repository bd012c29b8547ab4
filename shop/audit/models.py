"""The audit trail: one append-only row per significant action, and its vocabulary."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from shop.db import Base

SYSTEM_ACTOR = "system"


class Action(enum.StrEnum):
    """Every action the trail records (`GET /audit-logs?action=`), one place for all domains."""

    # accounts
    AUTH_REGISTER = "auth.register"
    AUTH_EMAIL_VERIFIED = "auth.email_verified"
    AUTH_PHONE_VERIFIED = "auth.phone_verified"
    AUTH_LOGIN = "auth.login"
    AUTH_LOGIN_FAILED = "auth.login_failed"
    AUTH_2FA_ENABLED = "auth.2fa_enabled"
    AUTH_2FA_DISABLED = "auth.2fa_disabled"
    AUTH_SESSION_REVOKED = "auth.session_revoked"
    AUTH_LOGOUT = "auth.logout"
    AUTH_PASSWORD_CHANGED = "auth.password_changed"
    AUTH_PASSWORD_RESET_REQUESTED = "auth.password_reset_requested"
    AUTH_PASSWORD_RESET = "auth.password_reset"
    USER_UPDATED = "user.updated"
    USER_CREATED_ADMIN = "user.created_admin"
    USER_DATA_EXPORTED = "user.data_exported"  # GET /auth/me/export
    USER_ERASED = "user.erased"  # DELETE /auth/me: the account anonymised
    # catalog
    CATEGORY_CREATED = "category.created"
    CATEGORY_UPDATED = "category.updated"
    CATEGORY_DELETED = "category.deleted"
    PRODUCT_CREATED = "product.created"
    PRODUCT_UPDATED = "product.updated"
    PRODUCT_DELETED = "product.deleted"
    PRODUCT_DEACTIVATED = "product.deactivated"
    VARIANT_CREATED = "variant.created"
    VARIANT_UPDATED = "variant.updated"
    VARIANT_DELETED = "variant.deleted"
    FLASH_SALE_CREATED = "flash_sale.created"
    FLASH_SALE_UPDATED = "flash_sale.updated"
    FLASH_SALE_DELETED = "flash_sale.deleted"
    PRODUCT_IMAGE_CREATED = "product_image.created"
    PRODUCT_IMAGE_UPDATED = "product_image.updated"
    PRODUCT_IMAGE_DELETED = "product_image.deleted"
    CATEGORY_IMAGE_SET = "category.image_set"
    CATEGORY_IMAGE_REMOVED = "category.image_removed"
    CATALOG_IMPORTED = "catalog.imported"  # one entry per batch of an import job
    # inventory
    INVENTORY_ADJUSTED = "inventory.adjusted"
    PURCHASE_ORDER_CREATED = "purchase_order.created"
    PURCHASE_ORDER_RECEIVED = "purchase_order.received"
    PURCHASE_ORDER_CANCELLED = "purchase_order.cancelled"
    PURCHASE_ORDER_DELETED = "purchase_order.deleted"
    NOTIFICATION_ACKNOWLEDGED = "notification.acknowledged"
    NOTIFICATION_DELETED = "notification.deleted"
    # orders
    ORDER_CREATED = "order.created"
    ORDER_STATUS_CHANGED = "order.status_changed"
    ORDER_CANCELLED = "order.cancelled"
    PAYMENT_RECORDED = "payment.recorded"
    PAYMENT_MISMATCHED = "payment.mismatched"  # taken by the provider, not what was owed
    PROVIDER_REFUND_QUEUED = "provider_refund.queued"
    PROVIDER_REFUND_SUCCEEDED = "provider_refund.succeeded"
    PROVIDER_REFUND_FAILED = "provider_refund.failed"
    REFUND_CREATED = "refund.created"
    RETURN_REQUESTED = "return.requested"
    RETURN_APPROVED = "return.approved"
    RETURN_REJECTED = "return.rejected"
    RETURN_RECEIVED = "return.received"
    SHIPMENT_CREATED = "shipment.created"
    SHIPMENT_UPDATED = "shipment.updated"  # a tracking event recorded
    # reviews
    REVIEW_CREATED = "review.created"
    REVIEW_DELETED = "review.deleted"
    # webhooks
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"
    WEBHOOK_PINGED = "webhook.pinged"
    WEBHOOK_REDELIVERED = "webhook.redelivered"
    WEBHOOK_DEACTIVATED = "webhook.deactivated"
    # merchandising
    COUPON_CREATED = "coupon.created"
    COUPON_UPDATED = "coupon.updated"
    COUPON_DELETED = "coupon.deleted"
    # tax
    TAX_RATE_CREATED = "tax_rate.created"
    TAX_RATE_UPDATED = "tax_rate.updated"
    TAX_RATE_DELETED = "tax_rate.deleted"
    # shipping
    SHIPPING_METHOD_CREATED = "shipping_method.created"
    SHIPPING_METHOD_UPDATED = "shipping_method.updated"
    SHIPPING_METHOD_DELETED = "shipping_method.deleted"
    # jobs
    JOB_RUN = "job.run"


class Target(enum.StrEnum):
    """What an entry is about (`target_type`)."""

    USER = "user"
    CATEGORY = "category"
    PRODUCT = "product"
    VARIANT = "variant"
    FLASH_SALE = "flash_sale"
    PRODUCT_IMAGE = "product_image"
    PURCHASE_ORDER = "purchase_order"
    NOTIFICATION = "notification"
    ORDER = "order"
    RETURN = "return"
    REVIEW = "review"
    COUPON = "coupon"
    TAX_RATE = "tax_rate"
    SHIPPING_METHOD = "shipping_method"
    WEBHOOK = "webhook"
    JOB = "job"


class AuditLog(Base):
    __tablename__ = "audit_logs"
    label: ClassVar[str] = "Audit entry"
    __table_args__ = (Index("ix_audit_logs_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    actor_email: Mapped[str | None] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(64))
    target_id: Mapped[int | None]
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
