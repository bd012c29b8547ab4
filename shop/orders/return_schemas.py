"""Return bodies and answers (POST /orders/{id}/returns, /returns and what staff do to them)."""

from __future__ import annotations

from typing import Any, ClassVar, NotRequired, TypedDict

from marshmallow import ValidationError, fields, validate, validates_schema

from shop.orders.return_models import Condition, ReturnStatus
from shop.orders.schemas import MAX_LINES, quantity_field
from shop.schemas import AnswerSchema, BaseSchema, Flag, Money, PageArgsSchema, Timestamp, id_field

MAX_REASON = 500
MAX_NOTE = 1000


# Each line once cannot be JSON Schema (lines that differ in a field are different items to
# uniqueItems), so it is said in words.
ONCE: dict[str, Any] = {"description": "Each order line at most once in items."}


def _lines_once(lines: list[dict[str, Any]]) -> None:
    ids = [line["order_item_id"] for line in lines]
    if len(ids) != len(set(ids)):
        raise ValidationError("Each order line at most once.", "items")


class ReturnLineSchema(BaseSchema):
    order_item_id = id_field(required=True)
    quantity = quantity_field(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_REASON))


class ReturnCreateSchema(BaseSchema):
    items = fields.List(
        fields.Nested(ReturnLineSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_LINES),
        metadata={
            "description": "the order's lines and units to send back, each line once: at most "
            "delivered minus already returned (rejected returns do not count)"
        },
    )

    openapi_rules: ClassVar[dict[str, Any]] = ONCE

    @validates_schema
    def _each_line_once(self, data: dict[str, Any], **_: Any) -> None:
        _lines_once(data.get("items", []))


class ReturnLine(TypedDict):
    """What ReturnLineSchema loads."""

    order_item_id: int
    quantity: int
    reason: str


class ReturnCreate(TypedDict):
    """What ReturnCreateSchema loads."""

    items: list[ReturnLine]


class ReturnDecisionSchema(BaseSchema):
    note = fields.String(
        validate=validate.Length(max=MAX_NOTE),
        metadata={"description": "shown to the customer (in the email and the return)"},
    )


class ReturnDecision(TypedDict):
    """What ReturnDecisionSchema loads."""

    note: NotRequired[str]


class ReceiptLineSchema(BaseSchema):
    order_item_id = id_field(required=True)
    quantity = quantity_field(required=True)
    condition = fields.String(
        required=True,
        validate=validate.OneOf([c.value for c in Condition]),
        metadata={"description": "resellable: back to stock (RETURN); damaged: RETURN then DAMAGE"},
    )


class ReceiptSchema(BaseSchema):
    items = fields.List(
        fields.Nested(ReceiptLineSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_LINES),
        metadata={
            "description": "units that came back, each line once: at most asked minus "
            "received already"
        },
    )
    refund = Flag(
        load_default=False,
        metadata={
            "description": "refund these units now (what was paid for them, through the "
            "order's refunds: at most paid minus refunded)"
        },
    )

    openapi_rules: ClassVar[dict[str, Any]] = ONCE

    @validates_schema
    def _each_line_once(self, data: dict[str, Any], **_: Any) -> None:
        _lines_once(data.get("items", []))


class ReceiptLine(TypedDict):
    """What ReceiptLineSchema loads."""

    order_item_id: int
    quantity: int
    condition: str


class Receipt(TypedDict):
    """What ReceiptSchema loads."""

    items: list[ReceiptLine]
    refund: bool


class ReturnItemSchema(AnswerSchema):
    order_item_id = fields.Integer()
    quantity = fields.Integer()
    reason = fields.String()
    received_quantity = fields.Integer(metadata={"description": "resellable and damaged"})
    damaged_quantity = fields.Integer()
    refunded_quantity = fields.Integer()


class ReturnRefundSchema(AnswerSchema):
    id = fields.Integer()
    amount = Money()
    created_at = Timestamp()


class ReturnSchema(AnswerSchema):
    id = fields.Integer()
    order_id = fields.Integer()
    status = fields.String(
        metadata={
            "enum": [s.value for s in ReturnStatus],
            "description": "approved until every unit is received (partly received: see the "
            "items); received when all are; refunded when all are received and refunded",
        }
    )
    items = fields.List(fields.Nested(ReturnItemSchema))
    note = fields.String(allow_none=True, metadata={"description": "staff's, on approval or not"})
    decided_at = Timestamp(allow_none=True)
    refunds = fields.List(
        fields.Nested(ReturnRefundSchema), metadata={"description": "made on receipt"}
    )
    created_at = Timestamp()
    updated_at = Timestamp()


class ReturnListArgsSchema(PageArgsSchema):
    status = fields.String(validate=validate.OneOf([s.value for s in ReturnStatus]))
    order_id = id_field(strict=False)
