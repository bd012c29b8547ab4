"""Schema base class and the pagination envelope every list endpoint answers."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

MAX_PAGE_SIZE = 100


class BaseSchema(ma.Schema):
    class Meta:
        # Unknown and read-only fields in a body are an error (422), not silently dropped.
        unknown = ma.RAISE


class PageArgsSchema(BaseSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    page_size = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


_page_schemas: dict[type[ma.Schema], type[ma.Schema]] = {}


def page_of(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    """The `{items, page, page_size, total, pages}` envelope around `item_schema`."""
    if item_schema not in _page_schemas:
        name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
        _page_schemas[item_schema] = BaseSchema.from_dict(
            {
                "items": fields.List(fields.Nested(item_schema), required=True),
                "page": fields.Integer(required=True),
                "page_size": fields.Integer(required=True),
                "total": fields.Integer(required=True),
                "pages": fields.Integer(required=True),
            },
            name=name,
        )
    return _page_schemas[item_schema]
