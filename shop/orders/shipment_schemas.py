"""Shipment bodies and answers: POST/GET /orders/{id}/shipments, POST /shipments/{id}/events,
the carrier's webhook (POST /shipping/webhook)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, NotRequired, TypedDict

from marshmallow import ValidationError, fields, validate, validates_schema

from shop.orders.models import WebhookOutcome
from shop.orders.schemas import MAX_LINES, OrderKeyArgsSchema, quantity_field
from shop.orders.shipment_models import EVENT_STATUSES, ShipmentStatus
from shop.schemas import AnswerSchema, BaseSchema, PageArgsSchema, Timestamp, id_field

MAX_CARRIER = 100
MAX_TRACKING_NUMBER = 100
MAX_LOCATION = 200
MAX_NOTE = 1000
# Printable, no spaces: what carriers print on labels (and what a webhook names).
TRACKING_NUMBER = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
AT_DESCRIPTION = (
    "when it happened (ISO 8601; no offset means UTC); at most 5 minutes ahead of the "
    "server's clock (else 422)"
)


def _tracking_number(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=[
            validate.Length(min=1, max=MAX_TRACKING_NUMBER),
            validate.Regexp(TRACKING_NUMBER, error="Letters, digits and . _ / - only."),
        ],
        **kwargs,
    )


def _event_status(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.OneOf([s.value for s in EVENT_STATUSES]), **kwargs)


class ShipmentLineSchema(BaseSchema):
    order_item_id = id_field(required=True)
    quantity = quantity_field(required=True)


class ShipmentCreateSchema(BaseSchema):
    carrier = fields.String(required=True, validate=validate.Length(min=1, max=MAX_CARRIER))
    tracking_number = _tracking_number(
        required=True, metadata={"description": "unique: another shipment's is a 409"}
    )
    items = fields.List(
        fields.Nested(ShipmentLineSchema),
        validate=validate.Length(min=1, max=MAX_LINES),
        metadata={
            "description": "the order's lines and units in the parcel (each line once): at "
            "most ordered minus shipped already (409); omitted: every unit not shipped yet"
        },
    )

    # Each line once cannot be said in JSON Schema (lines that differ in quantity are
    # different items to uniqueItems), so it is said in words.
    openapi_rules: ClassVar[dict[str, Any]] = {
        "description": "Each order line at most once in items.",
    }

    @validates_schema
    def _lines_once(self, data: dict[str, Any], **_: Any) -> None:
        lines = [line["order_item_id"] for line in data.get("items", [])]
        if len(lines) != len(set(lines)):
            raise ValidationError("Each order line at most once.", "items")


class ShipmentLine(TypedDict):
    """What ShipmentLineSchema loads."""

    order_item_id: int
    quantity: int


class ShipmentCreate(TypedDict):
    """What ShipmentCreateSchema loads."""

    carrier: str
    tracking_number: str
    items: NotRequired[list[ShipmentLine]]


class ShipmentEventCreateSchema(BaseSchema):
    status = _event_status(required=True)
    location = fields.String(validate=validate.Length(max=MAX_LOCATION))
    note = fields.String(validate=validate.Length(max=MAX_NOTE))
    at = Timestamp(metadata={"description": f"{AT_DESCRIPTION}; default: now"})


class ShipmentEventCreate(TypedDict):
    """What ShipmentEventCreateSchema loads (and, with event_id, the carrier's webhook)."""

    status: str
    location: NotRequired[str | None]
    note: NotRequired[str | None]
    at: NotRequired[datetime]


class CarrierEventSchema(BaseSchema):
    event_id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "the carrier's id of the event: applied once"},
    )
    tracking_number = _tracking_number(required=True)
    status = _event_status(required=True)
    location = fields.String(load_default=None, validate=validate.Length(max=MAX_LOCATION))
    note = fields.String(load_default=None, validate=validate.Length(max=MAX_NOTE))
    at = Timestamp(required=True, metadata={"description": AT_DESCRIPTION})


class CarrierEvent(TypedDict):
    """What CarrierEventSchema loads."""

    event_id: str
    tracking_number: str
    status: str
    location: str | None
    note: str | None
    at: datetime


class ShipmentLineAnswerSchema(AnswerSchema):
    order_item_id = fields.Integer()
    quantity = fields.Integer()


class ShipmentEventSchema(AnswerSchema):
    status = fields.String(metadata={"enum": [s.value for s in EVENT_STATUSES]})
    location = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    at = Timestamp()


class ShipmentSchema(AnswerSchema):
    id = fields.Integer()
    order_id = fields.Integer()
    carrier = fields.String()
    tracking_number = fields.String()
    status = fields.String(
        metadata={
            "enum": [s.value for s in ShipmentStatus],
            "description": "pending until its first event; then the newest event's (by `at`); "
            "delivered is final",
        }
    )
    items = fields.List(fields.Nested(ShipmentLineAnswerSchema))
    events = fields.List(
        fields.Nested(ShipmentEventSchema), metadata={"description": "oldest first (by `at`)"}
    )
    created_at = Timestamp()
    updated_at = Timestamp()


class ShipmentListArgsSchema(PageArgsSchema, OrderKeyArgsSchema):
    pass


class CarrierWebhookResultSchema(AnswerSchema):
    result = fields.String(
        metadata={"enum": [WebhookOutcome.RECORDED.value, WebhookOutcome.DUPLICATE.value]}
    )
    shipment_id = fields.Integer(allow_none=True, metadata={"description": "null: a duplicate"})


class CarrierWebhookResult(TypedDict):
    result: WebhookOutcome
    shipment_id: int | None
