"""Refund bodies and answers (POST and GET /orders/{id}/refunds)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, TypedDict

from marshmallow import ValidationError, fields, validate, validates_schema

from shop.orders.models import ProviderRefundStatus
from shop.orders.schemas import MAX_LINES, OrderKeyArgsSchema, quantity_field
from shop.schemas import AnswerSchema, BaseSchema, Flag, Money, PageArgsSchema, Timestamp, id_field

MAX_REASON = 500


class RefundLineSchema(BaseSchema):
    order_item_id = id_field(required=True)
    quantity = quantity_field(required=True)


class RefundCreateSchema(BaseSchema):
    amount = Money(required=True, metadata={"description": "at most paid minus refunded"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_REASON))
    items = fields.List(
        fields.Nested(RefundLineSchema),
        load_default=list,
        validate=validate.Length(max=MAX_LINES),
        metadata={
            "description": "the order's lines and units refunded (each line once): at most "
            "ordered minus refunded already"
        },
    )
    restock = Flag(
        load_default=False,
        metadata={"description": "the items' units go back to stock (ledger type RETURN)"},
    )

    # restock needs items, stated as JSON Schema (OpenAPI 3.0 has no if/then: "not restock
    # without items"); each line once cannot be (lines that differ in quantity are different
    # items to uniqueItems), so it is said in words.
    openapi_rules: ClassVar[dict[str, Any]] = {
        "description": "Each order line at most once in items; restock needs items.",
        "not": {
            "allOf": [
                {"required": ["restock"], "properties": {"restock": {"enum": [True]}}},
                {"not": {"required": ["items"], "properties": {"items": {"minItems": 1}}}},
            ]
        },
    }

    @validates_schema
    def _lines_once(self, data: dict[str, Any], **_: Any) -> None:
        lines = [line["order_item_id"] for line in data.get("items", [])]
        if len(lines) != len(set(lines)):
            raise ValidationError("Each order line at most once.", "items")
        if data.get("restock") and not lines:
            raise ValidationError("Name the items to put back in stock.", "items")


class RefundLine(TypedDict):
    """What RefundLineSchema loads."""

    order_item_id: int
    quantity: int


class RefundCreate(TypedDict):
    """What RefundCreateSchema loads."""

    amount: Decimal
    reason: str
    items: list[RefundLine]
    restock: bool


class RefundLineAnswerSchema(AnswerSchema):
    order_item_id = fields.Integer()
    quantity = fields.Integer()


class RefundSchema(AnswerSchema):
    id = fields.Integer()
    order_id = fields.Integer()
    amount = Money()
    reason = fields.String()
    items = fields.List(fields.Nested(RefundLineAnswerSchema))
    restocked = fields.Boolean()
    created_at = Timestamp()
    provider_status = fields.String(
        allow_none=True,
        metadata={
            "enum": [s.value for s in ProviderRefundStatus],
            "description": "sent through the provider (Stripe): how it stands; null: recorded "
            "by hand (the order was not paid through a provider)",
        },
    )


class RefundListArgsSchema(PageArgsSchema, OrderKeyArgsSchema):
    pass
