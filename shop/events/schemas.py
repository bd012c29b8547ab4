"""Event output and the feed's filters."""

from marshmallow import fields, validate

from shop.events.log import TYPES
from shop.events.models import POSITION_PATTERN
from shop.schemas import AnswerSchema, PageArgsSchema, Timestamp


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
        validate=validate.Regexp(POSITION_PATTERN, error="Not an event id."),
        metadata={"description": "only events after this id, oldest first"},
    )
    type = fields.String(validate=validate.OneOf(TYPES))
