"""Tax rate bodies and answers."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, ClassVar

from marshmallow import ValidationError, fields, validate

from shop.schemas import MONEY, AnswerSchema, BaseSchema, Flag, PageArgsSchema, Timestamp

COUNTRY = r"^[A-Za-z]{2}$"
REGION = r"^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$"


RATE = r"^(0(\.[0-9]{1,4})?|1(\.0{1,4})?)$"


class Rate(fields.Decimal):
    """A rate as a decimal string, 0 to 1 with up to four places ("0.0825" is 8.25 %)."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {
            "type": "string",
            "pattern": RATE,
            "example": "0.0825",
            "description": "a fraction, 0 to 1, up to four places: 0.0825 is 8.25 %",
        }
        super().__init__(places=4, as_string=True, metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Decimal:
        if not isinstance(value, str) or not re.fullmatch(RATE, value):
            raise ValidationError('Must be a decimal string from "0" to "1", such as "0.0825".')
        return Decimal(value).quantize(Decimal("0.0001"))


class TaxRateSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    country = fields.String(
        required=True,
        validate=validate.Regexp(COUNTRY, error="ISO 3166-1 alpha-2: two letters."),
        metadata={"description": "ISO 3166-1 alpha-2 (stored upper case)"},
    )
    region = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(REGION, error="ISO 3166-2: the country, '-', 1 to 3 more."),
        metadata={"description": "ISO 3166-2 subdivision of `country`, e.g. CA-ON; null: all"},
    )
    rate = Rate(required=True)
    applies_to_shipping = Flag(load_default=False)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)

    openapi_rules: ClassVar[dict[str, Any]] = {
        "description": "A region is a subdivision of the country: it starts with the country"
        " and '-' (CA-ON in CA)."
    }


class TaxRateUpdateSchema(TaxRateSchema):
    country = fields.String(validate=validate.Regexp(COUNTRY))
    region = fields.String(allow_none=True, validate=validate.Regexp(REGION))
    rate = Rate()
    applies_to_shipping = Flag()
    name = fields.String(validate=validate.Length(min=1, max=100))


class TaxRateQueryArgsSchema(PageArgsSchema):
    country = fields.String(validate=validate.Regexp(COUNTRY))


class TaxLineSchema(AnswerSchema):
    name = fields.String()
    rate = fields.String(metadata={"pattern": RATE, "example": "0.0825"})
    amount = fields.String(metadata={"pattern": MONEY, "example": "1.04"})
