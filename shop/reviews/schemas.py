"""Request and response bodies of the reviews API."""

from __future__ import annotations

from typing import TypedDict

from marshmallow import fields, validate

from shop.schemas import BaseSchema, Timestamp


class ReviewSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    product_id = fields.Integer(dump_only=True)
    user_id = fields.Integer(dump_only=True)
    rating = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=5))
    title = fields.String(load_default="", validate=validate.Length(max=200))
    body = fields.String(load_default="", validate=validate.Length(max=5000))
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


class ReviewUpdateSchema(ReviewSchema):
    rating = fields.Integer(strict=True, validate=validate.Range(min=1, max=5))
    title = fields.String(validate=validate.Length(max=200))
    body = fields.String(validate=validate.Length(max=5000))


class ReviewCreate(TypedDict):
    """What ReviewSchema loads."""

    rating: int
    title: str
    body: str


class ReviewUpdate(TypedDict, total=False):
    """What ReviewUpdateSchema loads."""

    rating: int
    title: str
    body: str
