"""Wishlist and coupon bodies and answers."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import fields, validate

from shop.merchandising.models import CouponKind
from shop.products.schemas import ProductSchema, scope_ids
from shop.schemas import AnswerSchema, BaseSchema, Flag, Money, PageArgsSchema, Timestamp

MAX_SCOPE = 500  # products or categories one coupon is limited to
CODE = r"^[A-Za-z0-9_-]{1,64}$"


def coupon_code_field(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.Regexp(CODE, error="Letters, digits, _ and -: 1 to 64."), **kwargs
    )


class WishlistItemSchema(AnswerSchema):
    product = fields.Nested(ProductSchema)
    added_at = Timestamp()


class CouponSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    code = coupon_code_field(
        required=True,
        metadata={"description": "unique whatever its case; customers may type any case"},
    )
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in CouponKind]))
    value = Money(
        positive=False,
        load_default="0.00",
        metadata={
            "description": "percent: 1 to 100 off; fixed: the amount off the lines it applies"
            " to together; free_shipping: ignored (0.00)"
        },
    )
    min_subtotal = Money(positive=False, load_default="0.00")
    starts_at = Timestamp(allow_none=True, load_default=None)
    ends_at = Timestamp(
        allow_none=True, load_default=None, metadata={"description": "after starts_at"}
    )
    max_redemptions = fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1, max=1_000_000_000),
        metadata={"description": "orders in all (null: no limit)"},
    )
    max_per_customer = fields.Integer(
        strict=True,
        allow_none=True,
        load_default=1,
        validate=validate.Range(min=1, max=1_000_000),
        metadata={"description": "orders per customer (null: no limit)"},
    )
    product_ids = scope_ids(
        MAX_SCOPE,
        load_default=list,
        metadata={"description": "limited to these products (with category_ids: either)"},
    )
    category_ids = scope_ids(
        MAX_SCOPE,
        load_default=list,
        metadata={"description": "limited to these and their subcategories"},
    )
    is_active = Flag(load_default=True)
    redemptions = fields.Integer(
        attribute="held",
        dump_only=True,
        metadata={"description": "orders holding it (cancelled ones gave it back)"},
    )
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)

    openapi_rules: ClassVar[dict[str, Any]] = {
        "description": "A percent coupon's value is 1 to 100, a fixed one's at least 0.01;"
        " ends_at is after starts_at."
    }


class CouponUpdateSchema(CouponSchema):
    code = coupon_code_field()
    kind = fields.String(validate=validate.OneOf([k.value for k in CouponKind]))
    value = Money(positive=False)
    min_subtotal = Money(positive=False)
    starts_at = Timestamp(allow_none=True)
    ends_at = Timestamp(allow_none=True)
    max_redemptions = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=1, max=1_000_000_000)
    )
    max_per_customer = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=1, max=1_000_000)
    )
    product_ids = scope_ids(MAX_SCOPE)
    category_ids = scope_ids(MAX_SCOPE)
    is_active = Flag()


class CouponQueryArgsSchema(PageArgsSchema):
    code = coupon_code_field(metadata={"description": "any case"})
