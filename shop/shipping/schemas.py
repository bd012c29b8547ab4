"""Shipping method bodies and answers, and the country codes they accept."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, NotRequired, TypedDict

from marshmallow import ValidationError, fields, validate, validates_schema

from shop.schemas import AnswerSchema, BaseSchema, Flag, Money, PageArgsSchema, Timestamp
from shop.shipping.models import EVERYWHERE

# ISO 3166-1 alpha-2: the officially assigned codes (a block reads better than 249 literals).
ISO_COUNTRIES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905
)
MAX_DAYS = 365


class CountryCode(fields.String):
    """An ISO 3166-1 alpha-2 code, upper case as addresses have it (`everywhere`: or "*")."""

    def __init__(self, *, everywhere: bool = False, **kwargs: Any) -> None:
        self.codes = ISO_COUNTRIES | {EVERYWHERE} if everywhere else ISO_COUNTRIES
        metadata = {"enum": sorted(self.codes), **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        code = super()._deserialize(value, attr, data, **kwargs)
        if code not in self.codes:
            raise ValidationError(f"{code!r} is not an ISO 3166-1 alpha-2 code such as US.")
        return code


class ShippingMethodSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    carrier = fields.String(required=True, validate=validate.Length(min=1, max=100))
    price = Money(positive=False, required=True)
    list_price = Money(
        positive=False,
        dump_only=True,
        attribute="price",
        metadata={"description": "the method's price, before free_over"},
    )
    free_over = Money(
        positive=False,
        load_default=None,
        allow_none=True,
        metadata={"description": "free when the goods (after discount) come to this; null: never"},
    )
    countries = fields.List(
        CountryCode(everywhere=True),
        required=True,
        validate=validate.Length(min=1, max=len(ISO_COUNTRIES)),
        metadata={
            "description": 'ISO 3166-1 alpha-2 codes, or "*": everywhere (with "*" the others'
            " are left out; each code is kept once)"
        },
    )
    min_days = fields.Integer(strict=True, required=True, validate=validate.Range(0, MAX_DAYS))
    max_days = fields.Integer(strict=True, required=True, validate=validate.Range(0, MAX_DAYS))
    is_active = Flag(load_default=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)

    openapi_rules: ClassVar[dict[str, Any]] = {
        "description": "min_days is at most max_days (a change is checked against the stored ones)."
    }

    @validates_schema
    def _days(self, data: dict[str, Any], **_: Any) -> None:
        if "min_days" in data and "max_days" in data and data["min_days"] > data["max_days"]:
            raise ValidationError("At most max_days.", "min_days")


class ShippingOfferSchema(ShippingMethodSchema):
    """A method in the list: `price` is what the `subtotal` asked about pays."""

    price = Money(
        positive=False,
        dump_only=True,
        attribute="quoted",
        metadata={"description": "for `subtotal`: 0.00 from free_over on"},
    )


class ShippingMethodUpdateSchema(ShippingMethodSchema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    carrier = fields.String(validate=validate.Length(min=1, max=100))
    price = Money(positive=False)
    free_over = Money(positive=False, allow_none=True)
    countries = fields.List(
        CountryCode(everywhere=True),
        validate=validate.Length(min=1, max=len(ISO_COUNTRIES)),
    )
    min_days = fields.Integer(strict=True, validate=validate.Range(0, MAX_DAYS))
    max_days = fields.Integer(strict=True, validate=validate.Range(0, MAX_DAYS))
    is_active = Flag()


class ShippingMethodCreate(TypedDict):
    """What ShippingMethodSchema loads."""

    name: str
    carrier: str
    price: Decimal
    free_over: Decimal | None
    countries: list[str]
    min_days: int
    max_days: int
    is_active: bool


class ShippingMethodUpdate(TypedDict, total=False):
    """What ShippingMethodUpdateSchema loads."""

    name: str
    carrier: str
    price: Decimal
    free_over: Decimal | None
    countries: list[str]
    min_days: int
    max_days: int
    is_active: bool


class ShippingMethodQueryArgsSchema(PageArgsSchema):
    country = CountryCode(
        metadata={"description": "methods shipping there (its own and the ones for everywhere)"}
    )
    subtotal = Money(
        positive=False,
        metadata={"description": "the goods' amount: each `price` is what it pays (default 0)"},
    )
    include_inactive = fields.Boolean(load_default=False, metadata={"description": "admin"})


class ShippingMethodQuery(TypedDict):
    """What ShippingMethodQueryArgsSchema loads."""

    page: int
    page_size: int
    country: NotRequired[str]
    subtotal: NotRequired[Decimal]
    include_inactive: bool


class ShippingMethodRefSchema(AnswerSchema):
    """The method an order ships by, as it was named then (id null: deleted since)."""

    id = fields.Integer(allow_none=True)
    name = fields.String()
    carrier = fields.String()


class ShippingOptionSchema(ShippingMethodRefSchema):
    """A method a cart may ship by, and what it pays for it."""

    id = fields.Integer()
    price = Money(positive=False, metadata={"description": "for this cart"})
    list_price = Money(positive=False, metadata={"description": "before free_over"})
    free_over = Money(positive=False, allow_none=True)
    min_days = fields.Integer()
    max_days = fields.Integer()
