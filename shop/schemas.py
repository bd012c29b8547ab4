"""Schema base class and the pagination envelope every list endpoint answers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import marshmallow as ma
from flask import request
from marshmallow import fields, validate
from werkzeug.datastructures import FileStorage

MAX_PAGE_SIZE = 100
MAX_MONEY = Decimal("9999999999.99")


class BaseSchema(ma.Schema):
    class Meta:
        # Unknown and read-only fields in a body are an error (422), not silently dropped.
        unknown = ma.RAISE

    @ma.pre_load
    def _refuse_unstorable_text(self, data: Any, **_: Any) -> Any:
        # Text the database cannot hold (NUL; lone surrogates, which are not UTF-8) is a 422
        # here, never an error in the database, the password hasher or a JSON encoder.
        def walk(value: Any, name: str) -> None:
            if isinstance(value, str):
                if "\x00" in value:
                    raise ma.ValidationError("Must not contain NUL characters.", name)
                try:
                    value.encode()
                except UnicodeEncodeError:
                    raise ma.ValidationError("Must be valid Unicode text.", name) from None
            if isinstance(value, dict):
                for key, item in value.items():
                    walk(key, name)
                    walk(item, name)
            elif isinstance(value, list):
                for item in value:
                    walk(item, name)

        if isinstance(data, Mapping):
            for key, value in data.items():
                walk(value, str(key))
        return data


class AnswerSchema(BaseSchema):
    """A schema that only answers (never loads a body): OpenAPI marks every field of it
    required, since every answer carries them (shop.api documents it so)."""


class PageArgsSchema(BaseSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    page_size = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


MAX_ID = 2**31 - 1


def id_field(*, strict: bool = True, **kwargs: Any) -> fields.Integer:
    """A reference to a row: a positive 32-bit integer; in a JSON body never "5" or 5.0."""
    return fields.Integer(strict=strict, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


def page_links(page: Any) -> dict[str, str | None]:
    """The envelope's `links`: this request's path and query at other pages (`next` and
    `prev` are null at the ends)."""
    args = {key: request.args.getlist(key) for key in request.args if key != "page"}

    def at(number: int) -> str:
        return f"{request.path}?{urlencode({**args, 'page': number}, doseq=True)}"

    last = max(page.pages, 1)
    return {
        "self": at(page.page),
        "first": at(1),
        "last": at(last),
        "next": at(page.page + 1) if page.page < last else None,
        "prev": at(min(page.page - 1, last)) if page.page > 1 else None,
    }


class LinksSchema(AnswerSchema):
    self = fields.String(required=True)
    first = fields.String(required=True)
    last = fields.String(required=True)
    next = fields.String(required=True, allow_none=True)
    prev = fields.String(required=True, allow_none=True)


class _PageLinks(fields.Nested):
    """`links`, computed from the page and the request as it is dumped."""

    def serialize(self, attr: str, obj: Any, accessor: Any = None, **kwargs: Any) -> Any:
        return self._serialize(page_links(obj), attr, obj, **kwargs)  # type: ignore[no-untyped-call]


class PageSchema(AnswerSchema):
    """The envelope of every list: a page of `items` (page_of adds them) and where the others
    are (also as an RFC 8288 Link header, set by Blueprint.response)."""

    page = fields.Integer(required=True)
    page_size = fields.Integer(required=True)
    total = fields.Integer(required=True)
    pages = fields.Integer(required=True)
    links = _PageLinks(LinksSchema, required=True)


_page_schemas: dict[type[ma.Schema], type[PageSchema]] = {}


def page_of(item_schema: type[ma.Schema]) -> type[PageSchema]:
    """The `{items, page, page_size, total, pages, links}` envelope around `item_schema`."""
    if item_schema not in _page_schemas:
        name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
        envelope = PageSchema.from_dict(
            {"items": fields.List(fields.Nested(item_schema), required=True)}, name=name
        )
        assert issubclass(envelope, PageSchema)
        _page_schemas[item_schema] = envelope
    return _page_schemas[item_schema]


class Flag(fields.Boolean):
    """A boolean in a JSON body: `true` or `false`, never 1, 0 or "yes" (query parameters,
    which are text, use fields.Boolean)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class FileUpload(fields.Field[FileStorage]):
    """A file part of a multipart body (a text field of the same name is a 422)."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"type": "string", "format": "binary", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> FileStorage:
        if not isinstance(value, FileStorage):
            raise ma.ValidationError("Must be a file.")
        return value


class Timestamp(fields.AwareDateTime):
    """A moment: ISO 8601 in UTC with milliseconds ("2026-12-01T07:06:27.482+00:00"), always
    the same shape; in input any offset (none means UTC)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_timezone=UTC, **kwargs)

    def _serialize(self, value: datetime | None, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else value.astimezone(UTC).isoformat(timespec="milliseconds")


CENT = Decimal("0.01")


# What Money accepts, for clients to validate against: up to 10 digits and 2 places, and for
# positive amounts (prices, payments) at least 0.01.
MONEY = r"^\d{1,10}(\.\d{1,2})?$"
POSITIVE_MONEY = r"^([1-9]\d{0,9}(\.\d{1,2})?|0\.(0[1-9]|[1-9]\d?))$"


class Money(fields.Decimal):
    """Money as a decimal string with two places ("19.99"); more places in input are a 422."""

    def __init__(self, *, positive: bool = True, **kwargs: Any) -> None:
        self.minimum = CENT if positive else Decimal(0)
        self.pattern = POSITIVE_MONEY if positive else MONEY
        metadata = {
            "type": "string",
            "pattern": self.pattern,
            "example": "19.99",
            **kwargs.pop("metadata", {}),
        }
        super().__init__(as_string=True, allow_nan=False, metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Decimal:
        if not isinstance(value, str):  # a JSON number is a float to most clients
            raise ma.ValidationError('Must be a decimal string such as "19.99".')
        # Exactly the documented pattern (no exponent, spaces, leading zeros or other digits);
        # an amount below the minimum ("0", "-5") gets the minimum's message.
        form = 'Must be a decimal such as "19.99": at most 10 digits, then two places.'
        if not re.fullmatch(r"-?" + MONEY[1:], value):
            raise ma.ValidationError(form)
        number = super()._deserialize(value, attr, data, **kwargs)
        if number < self.minimum:
            raise ma.ValidationError(f"Must be at least {self.minimum}.")
        if not re.fullmatch(self.pattern, value):
            raise ma.ValidationError(form)
        return number.quantize(CENT)

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        return super()._serialize(Decimal(value).quantize(CENT), attr, obj, **kwargs)
