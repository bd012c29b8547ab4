"""Phone numbers in bodies (international form in, E.164 stored), and the bodies of the phone
code endpoints."""

from __future__ import annotations

from typing import Any

import phonenumbers
from marshmallow import ValidationError, fields, validate

from shop.schemas import BaseSchema

MAX_PHONE_INPUT = 32  # characters as typed: "+44 (0)20 7946-0000"
INTERNATIONAL = "Give the number in international form: + and the country code first."
INVALID = "Not a valid phone number."
CODE_PATTERN = r"^[0-9]{6}$"


def e164(text: str) -> str:
    """`text` (a leading + and the country code; spaces, dashes, dots, brackets between) as
    E.164, if it is a number that can be dialled; else a ValidationError saying why."""
    if not text.lstrip().startswith("+"):
        raise ValidationError(INTERNATIONAL)
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise ValidationError(INVALID) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(INVALID)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def as_e164(text: Any) -> str | None:
    """`text` as E.164, or None when it is not a valid number (rate-limit keys)."""
    if not isinstance(text, str) or len(text) > MAX_PHONE_INPUT:
        return None
    try:
        return e164(text)
    except ValidationError:
        return None


class PhoneNumber(fields.String):
    """A phone number, loaded as E.164 (`+14155550123`); with `clearable`, "" too (no phone)."""

    def __init__(self, *, clearable: bool = False, **kwargs: Any) -> None:
        self.clearable = clearable
        description = "international form (+ and the country code), answered in E.164"
        metadata = {
            "description": description + ('; "" removes it' if clearable else ""),
            "example": "+14155550123",
            "pattern": r"^\+" if not clearable else r"^(\+|$)",
            **kwargs.pop("metadata", {}),
        }
        super().__init__(validate=validate.Length(max=MAX_PHONE_INPUT), metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > MAX_PHONE_INPUT:
            raise ValidationError(f"Longer than maximum length {MAX_PHONE_INPUT}.")
        if text == "" and self.clearable:
            return ""
        return e164(text)


class PhoneOnlySchema(BaseSchema):
    phone = PhoneNumber(required=True)


class PhoneCodeSchema(BaseSchema):
    code = fields.String(required=True, validate=validate.Regexp(CODE_PATTERN, error="Six digits."))


class PhoneLoginSchema(BaseSchema):
    phone = PhoneNumber(required=True)
    code = fields.String(required=True, validate=validate.Regexp(CODE_PATTERN, error="Six digits."))
