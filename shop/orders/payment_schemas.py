"""Payment bodies and answers: staff payments, the generic webhook, Stripe's intent."""

from __future__ import annotations

from decimal import Decimal
from typing import NotRequired, TypedDict

from marshmallow import fields, validate

from shop.orders.models import PaymentMethod, PaymentOutcome, WebhookOutcome
from shop.orders.schemas import OrderKeyArgsSchema
from shop.schemas import AnswerSchema, BaseSchema, Money, PageArgsSchema, Timestamp

MANUAL_METHODS = [
    m.value for m in PaymentMethod if m not in (PaymentMethod.PROVIDER, PaymentMethod.STRIPE)
]


class PaymentCreateSchema(BaseSchema):
    amount = Money(required=True)
    method = fields.String(
        required=True,
        validate=validate.OneOf(MANUAL_METHODS),
    )
    reference = fields.String(validate=validate.Length(max=200))


class PaymentCreate(TypedDict):
    """What PaymentCreateSchema loads."""

    amount: Decimal
    method: str
    reference: NotRequired[str]


class PaymentSchema(AnswerSchema):
    id = fields.Integer()
    order_id = fields.Integer()
    amount = Money()
    method = fields.String(metadata={"enum": [m.value for m in PaymentMethod]})
    status = fields.String(
        metadata={
            "enum": [o.value for o in PaymentOutcome],
            "description": "mismatched: taken by the provider, not what the order owed (unpaid)",
        }
    )
    reference = fields.String(
        allow_none=True, metadata={"description": "stripe: the PaymentIntent's id"}
    )
    created_at = Timestamp()


class WebhookSchema(BaseSchema):
    event_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    order_number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    amount = Money(required=True)
    currency = fields.String(validate=validate.Length(equal=3))
    status = fields.String(
        required=True,
        validate=validate.OneOf([PaymentOutcome.SUCCEEDED.value, PaymentOutcome.FAILED.value]),
    )
    reference = fields.String(load_default=None, validate=validate.Length(max=200))


class PaymentEvent(TypedDict):
    """What WebhookSchema loads."""

    event_id: str
    order_number: str
    amount: Decimal
    currency: NotRequired[str]
    status: str
    reference: str | None


class WebhookResultSchema(AnswerSchema):
    result = fields.String(metadata={"enum": [o.value for o in WebhookOutcome]})
    payment_id = fields.Integer(allow_none=True)


class WebhookResult(TypedDict):
    result: WebhookOutcome
    payment_id: int | None


class PaymentIntentSchema(AnswerSchema):
    provider = fields.String(metadata={"enum": ["stripe"]})
    client_secret = fields.String(
        metadata={"description": "for Stripe.js to confirm the payment in the browser"}
    )
    amount = Money(metadata={"description": "the order's total"})
    currency = fields.String()


class PaymentIntentAnswer(TypedDict):
    """What PaymentIntentSchema dumps."""

    provider: str
    client_secret: str
    amount: Decimal
    currency: str


class PaymentListArgsSchema(PageArgsSchema, OrderKeyArgsSchema):
    pass
