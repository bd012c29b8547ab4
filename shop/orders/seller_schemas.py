"""What GET /seller/orders answers: an order with only the seller's lines, the address to ship
them to, and the shipments that carry them."""

from __future__ import annotations

from marshmallow import fields, validate

from shop.orders.models import OrderStatus, PaymentStatus
from shop.orders.schemas import AddressFieldsSchema, OrderLineSchema
from shop.orders.shipment_schemas import ShipmentSchema
from shop.schemas import AnswerSchema, Money, PageArgsSchema, Timestamp


class SellerShipmentSchema(ShipmentSchema):
    """A shipment as a seller sees it: `items` are only their lines' units."""


class SellerOrderSchema(AnswerSchema):
    """An order as a seller sees it: only their lines, where to ship them, and the shipments
    that carry them."""

    id = fields.Integer()
    number = fields.String()
    status = fields.String(metadata={"enum": [s.value for s in OrderStatus]})
    payment_status = fields.String(metadata={"enum": [s.value for s in PaymentStatus]})
    items = fields.List(fields.Nested(OrderLineSchema), metadata={"description": "theirs only"})
    total = Money(positive=False, metadata={"description": "their lines' line_total summed"})
    currency = fields.String()
    shipping_address = fields.Nested(AddressFieldsSchema)
    shipments = fields.List(
        fields.Nested(SellerShipmentSchema),
        metadata={"description": "those carrying units of their lines, oldest first"},
    )
    created_at = Timestamp()


class SellerOrderQueryArgsSchema(PageArgsSchema):
    status = fields.String(validate=validate.OneOf([s.value for s in OrderStatus]))
