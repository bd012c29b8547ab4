"""Request and response bodies of the inventory API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, NotRequired, TypedDict

from marshmallow import ValidationError, fields, validate, validates_schema

from shop.inventory.models import NotificationKind, PurchaseOrderStatus
from shop.products.models import MANUAL_TYPES, MovementType
from shop.schemas import (
    MAX_MONEY,
    AnswerSchema,
    BaseSchema,
    Money,
    PageArgsSchema,
    Timestamp,
    id_field,
)

MAX_QUANTITY = 1_000_000


class MovementSchema(AnswerSchema):
    id = fields.Integer()
    product_id = fields.Integer()
    variant_id = fields.Integer(allow_none=True)
    type = fields.String(metadata={"enum": [t.value for t in MovementType]})
    quantity = fields.Integer(metadata={"description": "signed change"})
    stock_after = fields.Integer()
    reference = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    created_by = fields.Integer(allow_none=True)
    created_at = Timestamp()


class MovementCreateSchema(BaseSchema):
    product_id = id_field(required=True)
    variant_id = id_field(allow_none=True)
    type = fields.String(
        required=True,
        validate=validate.OneOf([t.value for t in MANUAL_TYPES]),
        metadata={"description": "system types (INITIAL, SALE, ...) are not accepted"},
    )
    quantity = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=-MAX_QUANTITY, max=MAX_QUANTITY),
        metadata={"description": "> 0; ADJUSTMENT is signed (non-zero)"},
    )
    reference = fields.String(validate=validate.Length(max=100))
    note = fields.String(validate=validate.Length(max=2000))

    # Stated with `not`, which validators apply and client generators leave alone (a oneOf
    # would turn the model into a union of partial ones).
    openapi_rules: ClassVar[dict[str, Any]] = {
        "description": "IN and OUT take a positive quantity; ADJUSTMENT a non-zero one.",
        "not": {
            "anyOf": [
                {
                    "required": ["type", "quantity"],
                    "properties": {
                        "type": {
                            "enum": [t.value for t in MANUAL_TYPES if t != MovementType.ADJUSTMENT]
                        },
                        "quantity": {"maximum": 0},
                    },
                },
                {
                    "required": ["type", "quantity"],
                    "properties": {
                        "type": {"enum": [MovementType.ADJUSTMENT.value]},
                        "quantity": {"enum": [0]},
                    },
                },
            ]
        },
    }

    @validates_schema
    def _sign(self, data: dict[str, Any], **_: Any) -> None:
        quantity, kind = data.get("quantity"), data.get("type")
        if quantity is None or kind is None:
            return
        if kind == MovementType.ADJUSTMENT and quantity == 0:
            raise ValidationError("An adjustment must change the stock.", "quantity")
        if kind != MovementType.ADJUSTMENT and quantity <= 0:
            raise ValidationError(f"{kind} takes a positive quantity.", "quantity")


class MovementCreate(TypedDict):
    """What MovementCreateSchema loads."""

    product_id: int
    variant_id: NotRequired[int | None]
    type: str
    quantity: int
    reference: NotRequired[str]
    note: NotRequired[str]


class MovementQueryArgsSchema(PageArgsSchema):
    product_id = id_field(strict=False)
    variant_id = id_field(strict=False)
    type = fields.String(validate=validate.OneOf([t.value for t in MovementType]))
    since = Timestamp()
    until = Timestamp()


class PurchaseOrderItemSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    product_id = id_field(required=True)
    variant_id = id_field(allow_none=True)
    quantity = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY)
    )
    unit_cost = Money(required=True, positive=False)
    line_cost = Money(dump_only=True, positive=False)


class PurchaseOrderSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    supplier = fields.String(required=True, validate=validate.Length(min=1, max=200))
    reference = fields.String(allow_none=True, validate=validate.Length(max=100))
    status = fields.String(
        load_default=PurchaseOrderStatus.RECEIVED.value,
        validate=validate.OneOf([PurchaseOrderStatus.ORDERED, PurchaseOrderStatus.RECEIVED]),
        metadata={"description": "received (default: stock goes up now) or ordered"},
    )
    items = fields.List(
        fields.Nested(PurchaseOrderItemSchema),
        required=True,
        validate=validate.Length(min=1, max=200),
    )
    total_cost = Money(dump_only=True, positive=False)
    created_by = fields.Integer(dump_only=True, allow_none=True)

    @validates_schema
    def _costs_fit(self, data: dict[str, Any], **_: Any) -> None:
        # Line and total costs are money too: at most MAX_MONEY, as their answers promise.
        lines = [item["quantity"] * item["unit_cost"] for item in data.get("items", [])]
        if any(cost > MAX_MONEY for cost in lines) or sum(lines) > MAX_MONEY:
            raise ValidationError(f"Costs above {MAX_MONEY} cannot be recorded.", "items")

    received_at = Timestamp(dump_only=True, allow_none=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


class PurchaseOrderLine(TypedDict):
    """What PurchaseOrderItemSchema loads."""

    product_id: int
    variant_id: NotRequired[int | None]
    quantity: int
    unit_cost: Decimal


class PurchaseOrderCreate(TypedDict):
    """What PurchaseOrderSchema loads."""

    supplier: str
    reference: NotRequired[str | None]
    status: str
    items: list[PurchaseOrderLine]


class PurchaseOrderQueryArgsSchema(PageArgsSchema):
    status = fields.String(validate=validate.OneOf([s.value for s in PurchaseOrderStatus]))
    supplier = fields.String(validate=validate.Length(max=200))


class LowStockItemSchema(AnswerSchema):
    product_id = fields.Integer()
    variant_id = fields.Integer(allow_none=True)
    sku = fields.String()
    name = fields.String()
    stock = fields.Integer()
    low_stock_threshold = fields.Integer()


class NotificationSchema(AnswerSchema):
    id = fields.Integer()
    kind = fields.String(metadata={"enum": [k.value for k in NotificationKind]})
    product_id = fields.Integer()
    variant_id = fields.Integer(allow_none=True)
    message = fields.String()
    stock = fields.Integer(attribute="live_stock", metadata={"description": "now"})
    stock_when_opened = fields.Integer(attribute="stock")
    suggested_reorder_qty = fields.Integer()
    created_at = Timestamp()
    acknowledged_at = Timestamp(allow_none=True)
    acknowledged_by = fields.Integer(allow_none=True)
    resolved_at = Timestamp(allow_none=True, metadata={"description": "stock back above"})
    resolved_by = fields.String(allow_none=True)


class NotificationQueryArgsSchema(PageArgsSchema):
    open = fields.Boolean(metadata={"description": "true: neither acknowledged nor resolved"})
    product_id = id_field(strict=False)
    kind = fields.String(validate=validate.OneOf([k.value for k in NotificationKind]))
