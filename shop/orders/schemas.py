"""Request and response bodies of the cart, address, order and payment API.

Long because one domain's API (guest carts, cart, addresses, checkout and its preview,
orders, payments, the provider's webhook) declares its bodies and their TypedDicts here."""

from __future__ import annotations

from typing import Any, ClassVar, NotRequired, TypedDict

from marshmallow import ValidationError, fields, validate, validates_schema

from shop.merchandising.schemas import coupon_code_field
from shop.orders.models import (
    OrderStatus,
    PaymentStatus,
)
from shop.schemas import AnswerSchema, BaseSchema, Flag, Money, PageArgsSchema, Timestamp, id_field
from shop.shipping.schemas import ShippingMethodRefSchema, ShippingOptionSchema
from shop.tax.schemas import TaxLineSchema

MAX_LINE_QUANTITY = 1000
MAX_LINES = 50
MAX_CART_LINES = 100  # lines per cart: anonymous carts are not a cheap way to fill the database


def quantity_field(**kwargs: Any) -> fields.Integer:
    return fields.Integer(
        strict=True, validate=validate.Range(min=1, max=MAX_LINE_QUANTITY), **kwargs
    )


class CartLineSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    product_id = id_field(required=True)
    variant_id = id_field(allow_none=True)
    sku = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    unit_price = Money(dump_only=True)
    list_price = Money(
        dump_only=True, metadata={"description": "off sale; above unit_price: a sale"}
    )
    quantity = quantity_field(required=True)
    discount = Money(positive=False, dump_only=True, metadata={"description": "the coupon's"})
    line_total = Money(
        positive=False, dump_only=True, metadata={"description": "after the discount"}
    )


class CartLineCreate(TypedDict):
    """What CartLineSchema loads."""

    product_id: int
    variant_id: NotRequired[int | None]
    quantity: int


class CartLineUpdateSchema(BaseSchema):
    quantity = quantity_field(required=True)


class CartSchema(AnswerSchema):
    items = fields.List(fields.Nested(CartLineSchema))
    subtotal = Money(positive=False, metadata={"description": "the lines before any discount"})
    item_count = fields.Integer()
    coupon_code = fields.String(allow_none=True)
    coupon_error = fields.String(
        allow_none=True,
        metadata={"description": "why the cart's coupon does not apply now (checkout refuses it)"},
    )
    discount = Money(positive=False)
    free_shipping = fields.Boolean(metadata={"description": "by the coupon"})
    total = Money(
        positive=False,
        metadata={"description": "subtotal - discount; shipping and tax come at checkout"},
    )


class GuestCartSchema(AnswerSchema):
    id = fields.Integer()
    token = fields.String(
        metadata={"description": "send as X-Cart-Token; shown once (only its hash is kept)"}
    )


class CartMergeSchema(BaseSchema):
    token = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "the guest cart's X-Cart-Token"},
    )


class CartCouponSchema(BaseSchema):
    code = coupon_code_field(required=True, metadata={"description": "any case"})


class AddressFieldsSchema(BaseSchema):
    """The parts of an address an order keeps."""

    line1 = fields.String(required=True, validate=validate.Length(min=1, max=200))
    line2 = fields.String(load_default="", validate=validate.Length(max=200))
    city = fields.String(required=True, validate=validate.Length(min=1, max=100))
    state = fields.String(load_default="", validate=validate.Length(max=100))
    postal_code = fields.String(required=True, validate=validate.Length(min=1, max=20))
    country = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z]{2}$", error="A two-letter ISO 3166 code, e.g. US."),
    )
    phone = fields.String(load_default="", validate=validate.Regexp(r"^(|[0-9+()\-. ]{3,32})$"))


class AddressSchema(AddressFieldsSchema):
    id = fields.Integer(dump_only=True)
    label = fields.String(load_default="", validate=validate.Length(max=50))
    is_default = Flag(load_default=False)
    created_at = Timestamp(dump_only=True)


class AddressUpdateSchema(AddressSchema):
    line1 = fields.String(validate=validate.Length(min=1, max=200))
    line2 = fields.String(validate=validate.Length(max=200))
    city = fields.String(validate=validate.Length(min=1, max=100))
    state = fields.String(validate=validate.Length(max=100))
    postal_code = fields.String(validate=validate.Length(min=1, max=20))
    country = fields.String(validate=validate.Regexp(r"^[A-Z]{2}$"))
    phone = fields.String(validate=validate.Regexp(r"^(|[0-9+()\-. ]{3,32})$"))
    label = fields.String(validate=validate.Length(max=50))
    is_default = Flag()


class ShippingAddress(TypedDict):
    """What AddressFieldsSchema loads."""

    line1: str
    line2: str
    city: str
    state: str
    postal_code: str
    country: str
    phone: str


class AddressCreate(ShippingAddress):
    """What AddressSchema loads."""

    label: str
    is_default: bool


class AddressUpdate(TypedDict, total=False):
    """What AddressUpdateSchema loads."""

    line1: str
    line2: str
    city: str
    state: str
    postal_code: str
    country: str
    phone: str
    label: str
    is_default: bool


class OrderLineRequestSchema(BaseSchema):
    product_id = id_field(required=True)
    variant_id = id_field(allow_none=True)
    quantity = quantity_field(required=True)


class OrderCreateSchema(BaseSchema):
    items = fields.List(
        fields.Nested(OrderLineRequestSchema),
        validate=validate.Length(min=1, max=MAX_LINES),
        metadata={"description": "omit to order the cart"},
    )
    shipping_address = fields.Nested(AddressFieldsSchema)
    address_id = id_field()
    notes = fields.String(load_default="", validate=validate.Length(max=1000))
    coupon_code = coupon_code_field(
        metadata={"description": "any case; ordering the cart, its coupon applies without it"}
    )
    email = fields.Email(
        validate=validate.Length(max=254),
        metadata={
            "description": "a guest's (with X-Cart-Token): required there, where the"
            " confirmation goes; a signed-in order uses the account's"
        },
    )
    shipping_method_id = id_field(
        metadata={
            "description": "one of GET /shipping-methods?country=: required when an active"
            " method ships to the address's country (else the flat rate applies)"
        }
    )

    # Exactly one of the two, stated with `not` (see MovementCreateSchema).
    openapi_rules: ClassVar[dict[str, Any]] = {
        "description": "Give shipping_address or address_id, one of them.",
        "not": {
            "anyOf": [
                {"required": ["shipping_address", "address_id"]},
                {
                    "not": {
                        "anyOf": [{"required": ["shipping_address"]}, {"required": ["address_id"]}]
                    }
                },
            ]
        },
    }

    @validates_schema
    def _one_address(self, data: dict[str, Any], **_: Any) -> None:
        if ("shipping_address" in data) == ("address_id" in data):
            raise ValidationError(
                "Give shipping_address or address_id (one of them).", "shipping_address"
            )


class OrderLineRequest(TypedDict):
    """What OrderLineRequestSchema loads."""

    product_id: int
    variant_id: NotRequired[int | None]
    quantity: int


class OrderCreate(TypedDict):
    """What OrderCreateSchema loads: `shipping_address` or `address_id`."""

    items: NotRequired[list[OrderLineRequest]]
    shipping_address: NotRequired[ShippingAddress]
    address_id: NotRequired[int]
    notes: str
    coupon_code: NotRequired[str]
    email: NotRequired[str]
    shipping_method_id: NotRequired[int]


class OrderLineSchema(AnswerSchema):
    product_id = fields.Integer()
    variant_id = fields.Integer(allow_none=True)
    sku = fields.String()
    name = fields.String()
    unit_price = Money(metadata={"description": "charged"})
    list_price = Money(metadata={"description": "off sale (the compare-at price, if higher)"})
    quantity = fields.Integer()
    discount = Money(positive=False, metadata={"description": "the coupon's, on this line"})
    line_total = Money(positive=False, metadata={"description": "unit_price x quantity - discount"})
    tax = Money(
        positive=False,
        metadata={
            "description": "of line_total, half up: added, or inside it (PRICES_INCLUDE_TAX)"
        },
    )


class OrderItemSchema(OrderLineSchema):
    """A line of a placed order: its id is what refunds name (order_item_id)."""

    id = fields.Integer()


class StatusChangeSchema(AnswerSchema):
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    changed_by = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)
    at = Timestamp()


class OrderSchema(AnswerSchema):
    id = fields.Integer()
    number = fields.String()
    user_id = fields.Integer(allow_none=True, metadata={"description": "null: a guest's"})
    guest_email = fields.String(allow_none=True, metadata={"description": "a guest's order's"})
    access_key = fields.String(
        allow_none=True,
        metadata={
            "description": "a guest's order, in the answer of POST /orders only: read it with"
            " GET /orders/{id}?key= (or X-Order-Key); null otherwise"
        },
    )
    status = fields.String(metadata={"enum": [s.value for s in OrderStatus]})
    payment_status = fields.String(metadata={"enum": [s.value for s in PaymentStatus]})
    items = fields.List(fields.Nested(OrderItemSchema))
    subtotal = Money(positive=False, metadata={"description": "the lines before any discount"})
    coupon_code = fields.String(allow_none=True)
    discount = Money(positive=False)
    shipping_cost = Money(positive=False)
    shipping_method = fields.Nested(
        ShippingMethodRefSchema,
        allow_none=True,
        metadata={"description": "as named when ordered; null: the flat rate"},
    )
    tax = Money(positive=False, metadata={"description": "the lines' taxes and shipping's"})
    tax_lines = fields.List(fields.Nested(TaxLineSchema))
    total = Money(
        positive=False,
        metadata={
            "description": "subtotal - discount + shipping (+ tax, unless prices include it)"
        },
    )
    amount_paid = Money(positive=False)
    amount_refunded = Money(
        positive=False, metadata={"description": "the sum of its refunds (/orders/{id}/refunds)"}
    )
    invoice_number = fields.String(
        allow_none=True, metadata={"description": "given when paid (GET /orders/{id}/invoice)"}
    )
    refund_due = Money(
        positive=False, metadata={"description": "received after cancellation: to refund"}
    )
    currency = fields.String()
    shipping_address = fields.Nested(AddressFieldsSchema)
    notes = fields.String()
    tracking_number = fields.String(allow_none=True)
    status_history = fields.List(fields.Nested(StatusChangeSchema))
    created_at = Timestamp()
    updated_at = Timestamp()


class OrderKeyArgsSchema(BaseSchema):
    key = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "a guest order's access_key (or send X-Order-Key)"},
    )


class CheckoutPreviewSchema(AnswerSchema):
    lines = fields.List(fields.Nested(OrderLineSchema))
    subtotal = Money(positive=False, metadata={"description": "the lines before any discount"})
    coupon_code = fields.String(allow_none=True)
    discount = Money(positive=False)
    shipping_cost = Money(positive=False)
    tax = Money(positive=False)
    tax_lines = fields.List(fields.Nested(TaxLineSchema))
    total = Money(positive=False)
    currency = fields.String()
    shipping_method = fields.Nested(
        ShippingMethodRefSchema,
        allow_none=True,
        metadata={
            "description": "what shipping_cost is for: the one chosen, else the cheapest of"
            " shipping_methods; null: the flat rate (no method ships there)"
        },
    )
    shipping_methods = fields.List(
        fields.Nested(ShippingOptionSchema),
        metadata={
            "description": "the methods shipping there, priced for this cart, cheapest first"
        },
    )


class OrderQueryArgsSchema(PageArgsSchema):
    status = fields.String(validate=validate.OneOf([s.value for s in OrderStatus]))
    user_id = id_field(strict=False, metadata={"description": "staff and admins"})
    created_after = Timestamp()
    created_before = Timestamp()
    needs_refund = fields.Boolean(metadata={"description": "staff: orders owing a refund"})


class StatusUpdateSchema(BaseSchema):
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in OrderStatus]))
    note = fields.String(validate=validate.Length(max=1000))
    tracking_number = fields.String(validate=validate.Length(min=1, max=100))


class StatusUpdate(TypedDict):
    """What StatusUpdateSchema loads."""

    status: str
    note: NotRequired[str]
    tracking_number: NotRequired[str]


class CancelSchema(BaseSchema):
    note = fields.String(validate=validate.Length(max=1000))


# What staff record by hand: a provider's payments come from its webhook.
