"""Event output and the feed's filters."""

from marshmallow import fields, validate

from shop.events.log import TYPES
from shop.events.models import POSITION_PATTERN, DeliveryStatus
from shop.schemas import AnswerSchema, BaseSchema, Flag, PageArgsSchema, Timestamp


class EventSchema(AnswerSchema):
    id = fields.String(
        attribute="position",
        metadata={"description": "opaque and increasing; pass it as `after` to read on"},
    )
    type = fields.String(metadata={"enum": list(TYPES)})
    created_at = Timestamp()
    data = fields.Dict(
        metadata={"description": "the resource's id and number and the changed fields"}
    )


class EventQueryArgsSchema(PageArgsSchema):
    after = fields.String(
        validate=[
            validate.Length(equal=32, error="Not an event id."),
            validate.Regexp(POSITION_PATTERN, error="Not an event id."),
        ],
        metadata={"description": "only events after this id, oldest first"},
    )
    type = fields.String(validate=validate.OneOf(TYPES))


class WebhookEndpointSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    url = fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=2000),
        metadata={"description": "http(s); private, loopback and link-local addresses: 422"},
    )
    events = fields.List(
        fields.String(validate=validate.OneOf([*TYPES, "*"])),
        required=True,
        validate=validate.Length(min=1, max=len(TYPES) + 1),
        metadata={"description": 'the event types sent, or ["*"] for all'},
    )
    description = fields.String(load_default="", validate=validate.Length(max=500))
    is_active = Flag(load_default=True)
    created_at = Timestamp(dump_only=True)
    failure_count = fields.Integer(
        dump_only=True, metadata={"description": "attempts failed in a row (20: deactivated)"}
    )


class WebhookEndpointUpdateSchema(WebhookEndpointSchema):
    url = fields.Url(
        schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2000)
    )
    events = fields.List(
        fields.String(validate=validate.OneOf([*TYPES, "*"])),
        validate=validate.Length(min=1, max=len(TYPES) + 1),
    )
    description = fields.String(validate=validate.Length(max=500))
    is_active = Flag()


class WebhookEndpointSecretSchema(WebhookEndpointSchema):
    secret = fields.String(
        dump_only=True,
        metadata={"description": "whsec_...: signs every delivery; shown only here"},
    )


class WebhookDeliverySchema(AnswerSchema):
    id = fields.Integer()
    event_id = fields.String(metadata={"description": "also the webhook-id header"})
    event_type = fields.String()
    status = fields.String(metadata={"enum": [s.value for s in DeliveryStatus]})
    attempts = fields.Integer()
    response_status = fields.Integer(allow_none=True)
    response_body = fields.String(allow_none=True, metadata={"description": "its first 1 KB"})
    last_error = fields.String(allow_none=True)
    next_attempt_at = Timestamp(allow_none=True)
    created_at = Timestamp()
