"""Audit entry output and list filters."""

from marshmallow import fields, validate

from shop.schemas import AnswerSchema, PageArgsSchema, Timestamp, id_field


class AuditLogSchema(AnswerSchema):
    id = fields.Integer(dump_only=True)
    actor_id = fields.Integer(allow_none=True)
    actor_email = fields.String(allow_none=True)
    action = fields.String()
    target_type = fields.String(allow_none=True)
    target_id = fields.Integer(allow_none=True)
    changes = fields.Dict(allow_none=True)
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    created_at = Timestamp()


class AuditLogQueryArgsSchema(PageArgsSchema):
    actor_id = id_field(strict=False)
    action = fields.String(validate=validate.Length(max=64))
    target_type = fields.String(validate=validate.Length(max=64))
    target_id = id_field(strict=False)
    since = Timestamp()
    until = Timestamp()
