"""Wishlist answers."""

from marshmallow import fields

from shop.products.schemas import ProductSchema
from shop.schemas import AnswerSchema, Timestamp


class WishlistItemSchema(AnswerSchema):
    product = fields.Nested(ProductSchema)
    added_at = Timestamp()
