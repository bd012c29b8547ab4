"""Request and response bodies of the catalog API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NotRequired, Required, TypedDict

from flask_smorest.fields import Upload
from marshmallow import ValidationError, fields, validate, validates_schema
from webargs.fields import DelimitedList

from shop.products.models import ImportStatus
from shop.products.search import FACETS
from shop.schemas import (
    AnswerSchema,
    BaseSchema,
    Flag,
    Money,
    PageArgsSchema,
    Timestamp,
    id_field,
    page_of,
)

SLUG = validate.Regexp(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", error="Lowercase words joined by '-'.")
SKU = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", error="Letters, digits, '.', '_', '-'.")
MAX_STOCK = 1_000_000_000
MAX_ATTRIBUTES = 20


def _at_most_20_attributes(value: dict[str, str]) -> None:
    # A function, not validate.Length, which OpenAPI would render as a string's maxLength.
    if len(value) > MAX_ATTRIBUTES:
        raise ValidationError(f"At most {MAX_ATTRIBUTES} attributes.")


# The http(s) URLs image_url takes (a host with a top-level domain), for clients to check.
HTTP_URL = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,6}"
    r"(/[!-~]*)?$"
)


def _http_url(value: str) -> bool:
    if not value.lower().startswith(("http://", "https://")):
        raise ValidationError("Must be an http(s) URL.")
    return True


class CategoryRefSchema(AnswerSchema):
    id = fields.Integer()
    name = fields.String()
    slug = fields.String()


class CategorySchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    slug = fields.String(validate=[validate.Length(max=140), SLUG])
    description = fields.String(validate=validate.Length(max=5000))
    parent_id = id_field(allow_none=True)
    is_active = Flag()
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


class CategoryUpdateSchema(CategorySchema):
    name = fields.String(validate=validate.Length(min=1, max=120))


class CategoryCreate(TypedDict):
    """What CategorySchema loads."""

    name: str
    slug: NotRequired[str]
    description: NotRequired[str]
    parent_id: NotRequired[int | None]
    is_active: NotRequired[bool]


class CategoryUpdate(TypedDict, total=False):
    """What CategoryUpdateSchema loads."""

    name: str
    slug: str
    description: str
    parent_id: int | None
    is_active: bool


class CategoryQueryArgsSchema(PageArgsSchema):
    parent_id = id_field(strict=False)
    include_inactive = fields.Boolean(load_default=False)


class VariantSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    sku = fields.String(required=True, validate=[validate.Length(min=1, max=64), SKU])
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    attributes = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=50)),
        values=fields.String(validate=validate.Length(max=100)),
        validate=_at_most_20_attributes,
        load_default=dict,
        metadata={"maxProperties": MAX_ATTRIBUTES, "description": "names of 1 to 50 characters"},
    )
    price = Money(required=True)
    compare_at_price = Money(
        allow_none=True,
        metadata={"description": "the list price shown struck through: a lower price is a sale"},
    )
    stock = fields.Integer(
        strict=True, load_default=0, validate=validate.Range(min=0, max=MAX_STOCK)
    )
    is_active = Flag(load_default=True)


class VariantUpdateSchema(VariantSchema):
    sku = fields.String(validate=[validate.Length(min=1, max=64), SKU])
    name = fields.String(validate=validate.Length(min=1, max=200))
    attributes = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=50)),
        values=fields.String(validate=validate.Length(max=100)),
        validate=_at_most_20_attributes,
        metadata={"maxProperties": MAX_ATTRIBUTES, "description": "names of 1 to 50 characters"},
    )
    price = Money()
    compare_at_price = Money(allow_none=True)
    stock = fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_STOCK))
    is_active = Flag()


class VariantCreate(TypedDict):
    """What VariantSchema loads."""

    sku: str
    name: str
    attributes: NotRequired[dict[str, str]]
    price: Decimal
    compare_at_price: NotRequired[Decimal | None]
    stock: NotRequired[int]
    is_active: NotRequired[bool]


class VariantUpdate(TypedDict, total=False):
    """What VariantUpdateSchema loads."""

    sku: str
    name: str
    attributes: dict[str, str]
    price: Decimal
    compare_at_price: Decimal | None
    stock: int
    is_active: bool


class ProductSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    sku = fields.String(required=True, validate=[validate.Length(min=1, max=64), SKU])
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    slug = fields.String(validate=[validate.Length(max=220), SLUG])
    description = fields.String(validate=validate.Length(max=20_000))
    price = Money(required=True)
    compare_at_price = Money(
        allow_none=True,
        metadata={"description": "the list price shown struck through: a lower price is a sale"},
    )
    stock = fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_STOCK))
    low_stock_threshold = fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_STOCK))
    category_id = id_field(allow_none=True)
    category = fields.Nested(CategoryRefSchema, dump_only=True, allow_none=True)
    is_active = Flag()
    is_featured = Flag()
    image_url = fields.String(
        allow_none=True,
        validate=[validate.Length(max=2048), validate.URL(), _http_url],
        metadata={"pattern": HTTP_URL},
    )
    rating_avg = fields.Float(dump_only=True)
    rating_count = fields.Integer(dump_only=True)
    variants = fields.List(fields.Nested(VariantSchema), dump_only=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


class ProductUpdateSchema(ProductSchema):
    sku = fields.String(validate=[validate.Length(min=1, max=64), SKU])
    name = fields.String(validate=validate.Length(min=1, max=200))
    price = Money()
    compare_at_price = Money(allow_none=True)


class _ProductFields(TypedDict, total=False):
    compare_at_price: Decimal | None
    slug: str
    description: str
    stock: int
    low_stock_threshold: int
    category_id: int | None
    is_active: bool
    is_featured: bool
    image_url: str | None


class ProductCreate(_ProductFields):
    """What ProductSchema loads."""

    sku: Required[str]
    name: Required[str]
    price: Required[Decimal]


class ProductUpdate(_ProductFields, total=False):
    """What ProductUpdateSchema loads."""

    sku: str
    name: str
    price: Decimal


PRODUCT_SORTS = (
    "price", "-price", "name", "-name", "created_at", "-created_at",
    "rating", "-rating", "popularity", "relevance",
)  # fmt: skip


class ProductQueryArgsSchema(PageArgsSchema):
    category = id_field(strict=False, metadata={"description": "includes subcategories"})
    min_price = Money(positive=False, metadata={"description": "at most max_price"})
    max_price = Money(positive=False)
    in_stock = fields.Boolean()
    featured = fields.Boolean()
    on_sale = fields.Boolean(metadata={"description": "priced below its compare_at_price"})
    q = fields.String(validate=validate.Length(min=1, max=200))
    sort = fields.String(
        validate=validate.OneOf(PRODUCT_SORTS),
        metadata={"description": "default: relevance with q, else -created_at; relevance needs q"},
    )
    include_inactive = fields.Boolean(load_default=False, metadata={"description": "admin"})
    facets = DelimitedList(
        fields.String(validate=validate.OneOf(FACETS)),
        validate=validate.Length(min=1),
        metadata={"description": "category,price: how the matches spread (answer's facets)"},
    )

    @validates_schema
    def _check(self, data: dict[str, Any], **_: Any) -> None:
        low, high = data.get("min_price"), data.get("max_price")
        if low is not None and high is not None and low > high:
            raise ValidationError("Must not exceed max_price.", "min_price")
        if data.get("sort") == "relevance" and not data.get("q"):
            raise ValidationError("relevance needs q.", "sort")


class ExportArgsSchema(BaseSchema):
    format = fields.String(load_default="csv", validate=validate.OneOf(["csv"]))


class CategoryFacetSchema(AnswerSchema):
    id = fields.Integer()
    name = fields.String()
    count = fields.Integer()


class PriceFacetSchema(AnswerSchema):
    min = Money(positive=False)
    max = Money(positive=False, allow_none=True, metadata={"description": "null: no limit"})
    count = fields.Integer()


class FacetsSchema(BaseSchema):
    category = fields.List(fields.Nested(CategoryFacetSchema))
    price = fields.List(fields.Nested(PriceFacetSchema))


class ProductListSchema(page_of(ProductSchema)):  # type: ignore[misc]
    facets = fields.Nested(
        FacetsSchema, metadata={"description": "those asked for with facets=; else empty"}
    )


class SuggestionArgsSchema(BaseSchema):
    q = fields.String(required=True, validate=validate.Length(min=1, max=100))


class SuggestionSchema(AnswerSchema):
    id = fields.Integer()
    name = fields.String()


class ImportArgsSchema(BaseSchema):
    # Exactly "true" or "false", as documented (a query's text, not a JSON boolean).
    dry_run = fields.Boolean(
        load_default=False,
        truthy={"true"},
        falsy={"false"},
        metadata={
            "type": "string",
            "enum": ["true", "false"],
            "default": "false",
            "description": "true: check every row, write nothing",
        },
    )


class ImportFileSchema(BaseSchema):
    file = Upload(
        required=True,
        metadata={
            "description": "CSV (UTF-8 or Latin-1) in the export's columns, sku required; "
            "at most 50 MiB"
        },
    )


class ImportAcceptedSchema(AnswerSchema):
    job_id = fields.Integer()


class ImportErrorSchema(AnswerSchema):
    row = fields.Integer(metadata={"description": "as a spreadsheet numbers it: the header is 1"})
    field = fields.String(allow_none=True, metadata={"description": "the column; null: the row"})
    message = fields.String()


class ImportJobSchema(AnswerSchema):
    id = fields.Integer()
    status = fields.String(metadata={"enum": [s.value for s in ImportStatus]})
    dry_run = fields.Boolean()
    filename = fields.String()
    total = fields.Integer(allow_none=True, metadata={"description": "null until the file is read"})
    processed = fields.Integer()
    created = fields.Integer()
    updated = fields.Integer(metadata={"description": "rows that changed something"})
    unchanged = fields.Integer()
    failed = fields.Integer(metadata={"description": "rows refused (the others are applied)"})
    errors = fields.List(
        fields.Nested(ImportErrorSchema), metadata={"description": "the first 1,000"}
    )
    error = fields.String(allow_none=True, metadata={"description": "why the job stopped"})
    created_at = Timestamp()
    started_at = Timestamp(allow_none=True)
    finished_at = Timestamp(allow_none=True)
