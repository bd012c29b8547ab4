"""Request and response bodies of the catalog API.

Long because the catalog's answers nest one another (a product holds its category, variants,
images and flash sale), so they are declared together, in the order they nest."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NotRequired, Required, TypedDict

from marshmallow import ValidationError, fields, post_dump, validate, validates_schema
from webargs.fields import DelimitedList
from werkzeug.datastructures import FileStorage

from shop import media
from shop.db import utcnow
from shop.imaging import THUMBNAIL_SIZE
from shop.products.models import ImportStatus
from shop.products.pricing import LiveSale, current
from shop.products.search import FACETS
from shop.schemas import (
    AnswerSchema,
    BaseSchema,
    FileUpload,
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


MAX_IMAGES = 50  # a product's
MAX_ALT = 300


class MediaUrl(fields.String):
    """A stored file's key, answered as its url (shop.media)."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else media.url(value)


class ImageFilesSchema(AnswerSchema):
    url = MediaUrl(attribute="key", metadata={"description": "the image, re-encoded"})
    thumbnail_url = MediaUrl(
        attribute="thumbnail_key",
        metadata={"description": f"at most {THUMBNAIL_SIZE} px a side, in the image's format"},
    )
    thumbnail_webp_url = MediaUrl(
        attribute="thumbnail_webp_key", metadata={"description": "the thumbnail in WebP"}
    )
    width = fields.Integer()
    height = fields.Integer()


class ImageSchema(ImageFilesSchema):
    id = fields.Integer()
    alt = fields.String()
    position = fields.Integer(metadata={"description": "1 to the number of images"})
    variant_id = fields.Integer(allow_none=True)
    created_at = Timestamp()


_UPLOAD = "JPEG, PNG or WebP, at most 10 MiB and 40 million pixels (IMAGE_MAX_PIXELS)"


class CategoryImageUploadSchema(BaseSchema):
    file = FileUpload(required=True, metadata={"description": _UPLOAD})


class ImageUploadSchema(CategoryImageUploadSchema):
    alt = fields.String(validate=validate.Length(max=MAX_ALT))
    position = fields.Integer(
        validate=validate.Range(min=1, max=MAX_IMAGES),
        metadata={"description": "default: last; later images move down one"},
    )
    variant_id = id_field(strict=False, metadata={"description": "one of the product's"})


class ImageUpdateSchema(BaseSchema):
    alt = fields.String(validate=validate.Length(max=MAX_ALT))
    position = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=MAX_IMAGES),
        metadata={"description": "past the last: last; the others move to make room"},
    )
    variant_id = id_field(allow_none=True, metadata={"description": "one of the product's"})


class CategoryImageUpload(TypedDict):
    """What CategoryImageUploadSchema loads."""

    file: FileStorage


class ImageUpload(CategoryImageUpload, total=False):
    """What ImageUploadSchema loads."""

    alt: str
    position: int
    variant_id: int


class ImageUpdate(TypedDict, total=False):
    """What ImageUpdateSchema loads."""

    alt: str
    position: int
    variant_id: int | None


class CategoryRefSchema(AnswerSchema):
    id = fields.Integer()
    name = fields.String()
    slug = fields.String()


class SellerRefSchema(AnswerSchema):
    id = fields.Integer()
    name = fields.Function(
        lambda user: f"{user.first_name} {user.last_name}".strip() or f"Seller {user.id}"
    )


class CategorySchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    slug = fields.String(validate=[validate.Length(max=140), SLUG])
    description = fields.String(validate=validate.Length(max=5000))
    parent_id = id_field(allow_none=True)
    is_active = Flag()
    image = fields.Nested(ImageFilesSchema, dump_only=True, allow_none=True)
    image_url = fields.String(
        dump_only=True, allow_none=True, metadata={"description": "the image's url (or null)"}
    )
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)

    @post_dump
    def _image_url(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["image_url"] = data["image"]["url"] if data.get("image") else None
        return data


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


class FlashSaleRefSchema(AnswerSchema):
    id = fields.Integer()
    name = fields.String()
    ends_at = Timestamp()


def _on_sale(data: dict[str, Any], price: Decimal, sale: LiveSale | None) -> dict[str, Any]:
    """A dumped product or variant with the flash sale running on it, if any."""
    data["sale_price"] = str(sale.price_of(price)) if sale else None
    data["flash_sale"] = FlashSaleRefSchema().dump(sale) if sale else None
    return data


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
    images = fields.List(
        fields.Nested(ImageSchema),
        dump_only=True,
        metadata={"description": "the product's images of this variant"},
    )
    sale_price = Money(
        dump_only=True,
        allow_none=True,
        metadata={"description": "while a flash sale runs: what it sells for (else null)"},
    )
    flash_sale = fields.Nested(FlashSaleRefSchema, dump_only=True, allow_none=True)

    @post_dump(pass_original=True)
    def _flash_sale(self, data: dict[str, Any], variant: Any, **_: Any) -> dict[str, Any]:
        # Its product is in the session already (the variant was read through it).
        sale = current().best(variant.product_id, variant.product.category_id)
        return _on_sale(data, variant.price, sale)


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
    seller = fields.Nested(
        SellerRefSchema,
        dump_only=True,
        allow_none=True,
        metadata={"description": "the seller whose product it is; null: the store's own"},
    )
    is_active = Flag()
    is_featured = Flag()
    image_url = fields.String(
        allow_none=True,
        validate=[validate.Length(max=2048), validate.URL(), _http_url],
        metadata={"pattern": HTTP_URL, "description": "answers the first image's url, if any"},
    )
    rating_avg = fields.Float(dump_only=True)
    rating_count = fields.Integer(dump_only=True)
    variants = fields.List(fields.Nested(VariantSchema), dump_only=True)
    images = fields.List(fields.Nested(ImageSchema), dump_only=True)
    sale_price = Money(
        dump_only=True,
        allow_none=True,
        metadata={"description": "while a flash sale runs: what it sells for (else null)"},
    )
    flash_sale = fields.Nested(FlashSaleRefSchema, dump_only=True, allow_none=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)

    @post_dump(pass_original=True)
    def _images_and_sale(self, data: dict[str, Any], product: Any, **_: Any) -> dict[str, Any]:
        if data.get("images"):
            data["image_url"] = data["images"][0]["url"]
        return _on_sale(data, product.price, current().best(product.id, product.category_id))


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
    seller = id_field(strict=False, metadata={"description": "a seller's id: their products"})
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


MAX_SALE_SCOPE = 1000  # products or categories one flash sale names


def scope_ids(limit: int, **kwargs: Any) -> fields.List[Any]:
    """The ids of the products or categories a flash sale or a coupon names (at most `limit`)."""
    return fields.List(id_field(), validate=validate.Length(max=limit), **kwargs)


class FlashSaleSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    starts_at = Timestamp(required=True)
    ends_at = Timestamp(required=True, metadata={"description": "after starts_at"})
    discount_percent = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=1, max=90)
    )
    product_ids = scope_ids(MAX_SALE_SCOPE, load_default=list)
    category_ids = scope_ids(
        MAX_SALE_SCOPE,
        load_default=list,
        metadata={"description": "with their subcategories; give products, categories or both"},
    )
    is_active = fields.Method(
        "_running", dump_only=True, metadata={"type": "boolean", "description": "running now"}
    )
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)

    def _running(self, sale: Any) -> bool:
        return bool(sale.starts_at <= utcnow() < sale.ends_at)


class FlashSaleUpdateSchema(FlashSaleSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    starts_at = Timestamp()
    ends_at = Timestamp()
    discount_percent = fields.Integer(strict=True, validate=validate.Range(min=1, max=90))
    product_ids = scope_ids(MAX_SALE_SCOPE)
    category_ids = scope_ids(MAX_SALE_SCOPE)


class ImportArgsSchema(BaseSchema):
    dry_run = fields.Boolean(
        load_default=False, metadata={"description": "true: check every row, write nothing"}
    )


class ImportFileSchema(BaseSchema):
    file = FileUpload(
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
