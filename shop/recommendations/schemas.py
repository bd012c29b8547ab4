"""Recommendation query arguments and answers."""

from __future__ import annotations

from marshmallow import fields, validate

from shop.recommendations.models import Algorithm, Reason
from shop.schemas import AnswerSchema, BaseSchema, Money

MAX_LIMIT = 50


class ProductRecommendationArgsSchema(BaseSchema):
    limit = fields.Integer(
        load_default=10,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": "per list"},
    )


class UserRecommendationArgsSchema(BaseSchema):
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=MAX_LIMIT))
    algorithm = fields.Enum(
        Algorithm,
        by_value=True,
        load_default=Algorithm.HYBRID,
        metadata={"description": "hybrid blends the collaborative and content-based scores"},
    )


class RecommendedProductSchema(AnswerSchema):
    id = fields.Integer()
    sku = fields.String()
    name = fields.String()
    price = Money()
    sale_price = Money(
        allow_none=True,
        metadata={"description": "while a flash sale runs: what it sells for (else null)"},
    )
    image_url = fields.String(allow_none=True)
    rating_avg = fields.Float()


REASONS = ", ".join(reason.value for reason in Reason)


class RecommendationSchema(AnswerSchema):
    product = fields.Nested(RecommendedProductSchema)
    score = fields.Float(
        metadata={"description": "0 to 1, the algorithm's; 0 for best sellers filling the list"}
    )
    reason = fields.String(metadata={"description": f"one of: {REASONS}"})


class UserRecommendationsSchema(AnswerSchema):
    algorithm = fields.Enum(Algorithm, by_value=True)
    items = fields.List(fields.Nested(RecommendationSchema))


class ProductRecommendationsSchema(AnswerSchema):
    bought_together = fields.List(
        fields.Nested(RecommendationSchema),
        metadata={"description": "bought by the customers who bought this product"},
    )
    similar = fields.List(
        fields.Nested(RecommendationSchema),
        metadata={"description": "of its category, alike in words and attributes"},
    )
