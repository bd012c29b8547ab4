"""Catalog API: categories, products, variants, images, search suggestions, the CSV export
and import, flash sales.

Long because every path of the catalog shares its gates (admin views, inactive rows) and its
cached answers (`cached`, which ends at the next flash-sale boundary and is HTTP-cacheable:
ETag, Cache-Control, 304), declared once here."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, jsonify, request, stream_with_context
from flask.views import MethodView
from flask_jwt_extended import current_user, get_current_user

from shop import tracking
from shop.api import LOCATION, Blueprint, is_admin, visibility_scope
from shop.caching import cached_response
from shop.db import Page
from shop.errors import Forbidden
from shop.products import catalog, categories, flash_sales, images, imports, search, transfer
from shop.products.cache import CATALOG
from shop.products.import_rows import MAX_IMPORT_BYTES
from shop.products.models import (
    CatalogImport,
    Category,
    FlashSale,
    Product,
    ProductImage,
    ProductVariant,
)
from shop.products.pricing import next_boundary
from shop.products.schemas import (
    CategoryCreate,
    CategoryImageUpload,
    CategoryImageUploadSchema,
    CategoryQueryArgsSchema,
    CategorySchema,
    CategoryUpdate,
    CategoryUpdateSchema,
    ExportArgsSchema,
    FlashSaleSchema,
    FlashSaleUpdateSchema,
    ImageSchema,
    ImageUpdate,
    ImageUpdateSchema,
    ImageUpload,
    ImageUploadSchema,
    ImportAcceptedSchema,
    ImportArgsSchema,
    ImportFileSchema,
    ImportJobSchema,
    ProductCreate,
    ProductListSchema,
    ProductQueryArgsSchema,
    ProductSchema,
    ProductUpdate,
    ProductUpdateSchema,
    SuggestionArgsSchema,
    SuggestionSchema,
    VariantCreate,
    VariantSchema,
    VariantUpdate,
    VariantUpdateSchema,
)
from shop.schemas import PageArgsSchema, page_of
from shop.security import Role

blp = Blueprint("products", __name__, url_prefix="/api/v1", description="Catalog")
# Prices change when a flash sale starts or ends: cached answers end then too.
cached = cached_response(CATALOG, visibility_scope, until=next_boundary, http=True)
_product_schema = ProductSchema()  # built once: a marshmallow schema deep-copies its fields


def _admin_view(args: dict[str, Any]) -> dict[str, Any]:
    if args.get("include_inactive") and not is_admin():
        raise Forbidden("include_inactive is for admins.")
    return args


def _location(path: str) -> dict[str, str]:
    return {"Location": f"/api/v1/{path}"}


def _viewed(view: Callable[..., Any]) -> Callable[..., Any]:
    """Above `cached`: a product read (from the cache or not, or revalidated: a 304) by a
    signed-in customer, or by an anonymous client sending X-Session-ID, is one fact pushed to
    shop.tracking."""

    @wraps(view)
    def wrapper(self: Any, product_id: int) -> Any:
        response = view(self, product_id)
        if response.status_code in (200, 304) and tracking.enabled():
            user, session = get_current_user(), tracking.session_id()
            if user is not None or session is not None:
                tracking.record(
                    tracking.Fact.VIEW,
                    user_id=user.id if user is not None else None,
                    session_id=session,
                    product_id=product_id,
                )
        return response

    return wrapper


def _searched(source: str, results: Callable[[Any], int]) -> Callable[..., Any]:
    """Above `cached`: a search's first page (q given) is one fact pushed to shop.tracking,
    with how many results it had (`results` of the answer's JSON)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            response = view(*args, **kwargs)
            q = request.args.get("q", "").strip()
            if (
                q
                and response.status_code == 200
                and tracking.enabled()
                and request.args.get("page", "1") == "1"
            ):
                found = results(json.loads(response.get_data()))
                tracking.record(tracking.Fact.SEARCH, query=q[:200], results=found, source=source)
            return response

        return wrapper

    return decorator


@blp.route("/categories")
class Categories(MethodView):
    @blp.auth_optional
    @cached
    @blp.arguments(CategoryQueryArgsSchema, location="query")
    @blp.errors(403)
    @blp.response(200, page_of(CategorySchema))
    def get(self, args: dict[str, Any]) -> Page:
        """List categories (admins may include inactive ones)"""
        return categories.list_categories(**_admin_view(args))

    @blp.auth_required(Role.ADMIN)
    @blp.arguments(CategorySchema)
    @blp.errors(409)
    @blp.response(201, CategorySchema, headers=LOCATION)
    def post(self, data: CategoryCreate) -> tuple[Category, dict[str, str]]:
        """Create a category"""
        category = categories.create_category(current_user, data)
        return category, _location(f"categories/{category.id}")


@blp.route("/categories/<int:category_id>")
class CategoryById(MethodView):
    @blp.auth_optional
    @cached
    @blp.errors(404)
    @blp.response(200, CategorySchema)
    def get(self, category_id: int) -> Category:
        """Get a category"""
        return categories.get_category(category_id, include_inactive=is_admin())

    @blp.auth_required(Role.ADMIN)
    @blp.arguments(CategoryUpdateSchema, required=False)
    @blp.errors(404, 409)
    @blp.response(200, CategorySchema)
    def patch(self, data: CategoryUpdate, category_id: int) -> Category:
        """Change a category"""
        return categories.update_category(current_user, category_id, data)

    @blp.auth_required(Role.ADMIN)
    @blp.errors(404, 409)
    @blp.response(204)
    def delete(self, category_id: int) -> None:
        """Delete an empty category (no subcategories, no products)"""
        categories.delete_category(current_user, category_id)


@blp.route("/categories/<int:category_id>/image")
class CategoryImage(MethodView):
    @blp.auth_required(Role.ADMIN)
    @blp.arguments(CategoryImageUploadSchema, location="multipart")
    @blp.errors(404, 503)
    @blp.response(201, CategorySchema, headers=LOCATION)
    def post(self, data: CategoryImageUpload, category_id: int) -> tuple[Category, Any]:
        """Give a category its image (replacing the one it had): the upload rules of a
        product's images; answers the category"""
        category = images.set_category_image(current_user, category_id, data)
        return category, _location(f"categories/{category_id}")

    @blp.auth_required(Role.ADMIN)
    @blp.errors(404)
    @blp.response(204)
    def delete(self, category_id: int) -> None:
        """Remove a category's image (204 also when it had none)"""
        images.remove_category_image(current_user, category_id)


@blp.route("/categories/<int:category_id>/products")
class CategoryProducts(MethodView):
    @blp.auth_optional
    @cached
    @blp.arguments(ProductQueryArgsSchema, location="query")
    @blp.errors(403, 404)
    @blp.response(200, page_of(ProductSchema))
    def get(self, args: dict[str, Any], category_id: int) -> Page:
        """List a category's products (and its subcategories'); filters as /products"""
        categories.get_category(category_id, include_inactive=is_admin())
        return search.list_products(**{**_admin_view(args), "category": category_id})


@blp.route("/products")
class Products(MethodView):
    @blp.auth_optional
    @_searched("list", lambda answer: int(answer["total"]))
    @cached
    @blp.arguments(ProductQueryArgsSchema, location="query")
    @blp.errors(403)
    @blp.response(200, ProductListSchema)
    def get(self, args: dict[str, Any]) -> Page:
        """List products: filters, full-text search (q), sorting and facets"""
        return search.list_products(**_admin_view(args))

    @blp.auth_required(Role.SELLER)
    @blp.arguments(ProductSchema)
    @blp.errors(409)
    @blp.response(201, ProductSchema, headers=LOCATION)
    def post(self, data: ProductCreate) -> tuple[Product, dict[str, str]]:
        """Create a product; its initial stock is recorded in the ledger. A seller's product is
        theirs (`seller`)"""
        product = catalog.create_product(current_user, data)
        return product, _location(f"products/{product.id}")


@blp.route("/products/export")
class ProductExport(MethodView):
    @blp.auth_required(Role.STAFF)
    @blp.arguments(ExportArgsSchema, location="query")
    @blp.response(
        200,
        {"type": "string"},
        content_type="text/csv",
        description="sku, product_sku (a variant's product), name, category path, price, "
        "compare_at_price, stock, low_stock_threshold, is_active, is_featured",
    )
    def get(self, args: dict[str, Any]) -> Response:
        """Every product and variant as CSV, streamed (a cell that would run as a spreadsheet
        formula starts with a quote)"""
        return Response(
            stream_with_context(transfer.export_csv()),
            mimetype="text/csv",
            headers={"Content-Disposition": 'attachment; filename="products.csv"'},
        )


@blp.route("/products/import")
class ProductImport(MethodView):
    @blp.auth_required(Role.ADMIN)
    @blp.arguments(ImportArgsSchema, location="query")
    @blp.arguments(ImportFileSchema, location="multipart", max_bytes=MAX_IMPORT_BYTES)
    @blp.errors(422)
    @blp.response(202, ImportAcceptedSchema, headers=LOCATION)
    def post(self, args: dict[str, Any], files: dict[str, Any]) -> Any:
        """Import products and variants from a CSV in the export's columns (upserted by SKU;
        a bad row fails alone): a job, followed at GET /jobs/{job_id}. A header that is not
        the export's columns is a 422 at once"""
        upload = files["file"]
        job = imports.queue_import(
            current_user, upload.read(), upload.filename or "", dry_run=args["dry_run"]
        )
        return {"job_id": job.id}, _location(f"jobs/{job.id}")


@blp.route("/jobs/<int:job_id>")
class JobById(MethodView):
    @blp.auth_required(Role.ADMIN)
    @blp.errors(404)
    @blp.response(200, ImportJobSchema)
    def get(self, job_id: int) -> CatalogImport:
        """A catalog import's progress: counters growing batch by batch, the rows refused"""
        return imports.get_import(job_id)


@blp.route("/products/featured")
class FeaturedProducts(MethodView):
    @blp.auth_optional
    @cached
    @blp.arguments(ProductQueryArgsSchema, location="query")
    @blp.errors(403)
    @blp.response(200, ProductListSchema)
    def get(self, args: dict[str, Any]) -> Page:
        """List the featured products: the same filters, sorting, facets and envelope as
        /products"""
        return search.list_products(**{**_admin_view(args), "featured": True})


@blp.route("/products/suggestions")
class Suggestions(MethodView):
    @_searched("suggestions", len)
    @cached_response(CATALOG, lambda: "public", http=True)
    @blp.arguments(SuggestionArgsSchema, location="query")
    @blp.response(200, SuggestionSchema(many=True))
    def get(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Up to 10 product names for autocomplete (prefix, then typo-tolerant)

        Anyone (no token). Active products only, `{id, name}` each; `q` is required (422
        without it). Cached, with a strong ETag (If-None-Match: 304) and `Cache-Control:
        public` to anonymous callers."""
        return search.suggest(args["q"])


@blp.route("/products/<int:product_id>")
class ProductById(MethodView):
    @blp.auth_optional
    @_viewed
    @cached
    @blp.errors(404)
    @blp.response(200, ProductSchema)
    def get(self, product_id: int) -> Response:
        """Get a product (inactive ones, and inactive variants, only for admins)"""
        admin = is_admin()
        product = catalog.get_product(product_id, include_inactive=admin)
        body = _product_schema.dump(product)
        if not admin:
            body["variants"] = [v for v in body["variants"] if v["is_active"]]
        return jsonify(body)

    @blp.auth_required(Role.SELLER)
    @blp.arguments(ProductUpdateSchema, required=False)
    @blp.errors(404, 409)
    @blp.response(200, ProductSchema)
    def patch(self, data: ProductUpdate, product_id: int) -> Product:
        """Change a product; a new stock is recorded as an ADJUSTMENT"""
        return catalog.update_product(current_user, product_id, data)

    @blp.auth_required(Role.SELLER)
    @blp.errors(404)
    @blp.response(204)
    def delete(self, product_id: int) -> None:
        """Delete a product (one that orders refer to is deactivated instead)"""
        catalog.delete_product(current_user, product_id)


@blp.route("/products/<int:product_id>/variants")
class Variants(MethodView):
    @blp.auth_optional
    @cached
    @blp.arguments(PageArgsSchema, location="query")
    @blp.errors(404)
    @blp.response(200, page_of(VariantSchema))
    def get(self, args: dict[str, Any], product_id: int) -> Page:
        """List a product's variants"""
        return catalog.list_variants(product_id, include_inactive=is_admin(), **args)

    @blp.auth_required(Role.SELLER)
    @blp.arguments(VariantSchema)
    @blp.errors(404, 409)
    @blp.response(201, VariantSchema, headers=LOCATION)
    def post(self, data: VariantCreate, product_id: int) -> tuple[ProductVariant, Any]:
        """Add a variant; its initial stock is recorded in the ledger"""
        variant = catalog.create_variant(current_user, product_id, data)
        return variant, _location(f"products/{product_id}/variants/{variant.id}")


@blp.route("/products/<int:product_id>/variants/<int:variant_id>")
class VariantById(MethodView):
    @blp.auth_required(Role.SELLER)
    @blp.arguments(VariantUpdateSchema, required=False)
    @blp.errors(404, 409)
    @blp.response(200, VariantSchema)
    def patch(self, data: VariantUpdate, product_id: int, variant_id: int) -> ProductVariant:
        """Change a variant; a new stock is recorded as an ADJUSTMENT"""
        return catalog.update_variant(current_user, product_id, variant_id, data)

    @blp.auth_required(Role.SELLER)
    @blp.errors(404)
    @blp.response(204)
    def delete(self, product_id: int, variant_id: int) -> None:
        """Delete a variant (its remaining stock leaves through the ledger)"""
        catalog.delete_variant(current_user, product_id, variant_id)


@blp.route("/products/<int:product_id>/images")
class ProductImages(MethodView):
    @blp.auth_optional
    @cached
    @blp.arguments(PageArgsSchema, location="query")
    @blp.errors(404)
    @blp.response(200, page_of(ImageSchema))
    def get(self, args: dict[str, Any], product_id: int) -> Page:
        """List a product's images by position"""
        return images.list_images(product_id, include_inactive=is_admin(), **args)

    @blp.auth_required(Role.SELLER)
    @blp.arguments(ImageUploadSchema, location="multipart")
    @blp.errors(404, 409, 503)
    @blp.response(201, ImageSchema, headers=LOCATION)
    def post(self, data: ImageUpload, product_id: int) -> tuple[ProductImage, Any]:
        """Upload an image: JPEG, PNG or WebP, re-encoded without its metadata (EXIF, GPS),
        with a thumbnail (400 px) in its format and in WebP"""
        image = images.add_image(current_user, product_id, data)
        return image, _location(f"products/{product_id}/images/{image.id}")


@blp.route("/products/<int:product_id>/images/<int:image_id>")
class ProductImageById(MethodView):
    @blp.auth_optional
    @cached
    @blp.errors(404)
    @blp.response(200, ImageSchema)
    def get(self, product_id: int, image_id: int) -> ProductImage:
        """Get one of a product's images"""
        return images.get_image(product_id, image_id, include_inactive=is_admin())

    @blp.auth_required(Role.SELLER)
    @blp.arguments(ImageUpdateSchema, required=False)
    @blp.errors(404)
    @blp.response(200, ImageSchema)
    def patch(self, data: ImageUpdate, product_id: int, image_id: int) -> ProductImage:
        """Change an image's alt text, position (the others move to make room) or variant"""
        return images.update_image(current_user, product_id, image_id, data)

    @blp.auth_required(Role.SELLER)
    @blp.errors(404)
    @blp.response(204)
    def delete(self, product_id: int, image_id: int) -> None:
        """Delete an image and its files (the later ones move up one)"""
        images.delete_image(current_user, product_id, image_id)


flash_sales_blp = Blueprint(
    "flash_sales", __name__, url_prefix="/api/v1/flash-sales", description="Flash sales"
)


@flash_sales_blp.route("")
class FlashSales(MethodView):
    @flash_sales_blp.arguments(PageArgsSchema, location="query")
    @flash_sales_blp.response(200, page_of(FlashSaleSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """Flash sales running and upcoming, soonest first

        Anyone (no token). Paginated; sales that have ended are not listed. Staff manage
        them with POST /flash-sales and /flash-sales/{id} (admin)."""
        return flash_sales.list_flash_sales(**args)

    @flash_sales_blp.auth_required(Role.ADMIN)
    @flash_sales_blp.arguments(FlashSaleSchema)
    @flash_sales_blp.response(201, FlashSaleSchema, headers=LOCATION)
    def post(self, data: dict[str, Any]) -> tuple[FlashSale, dict[str, str]]:
        """Create a flash sale: a percent off products and categories for a window (where
        sales overlap, the biggest percent counts)"""
        sale = flash_sales.create_flash_sale(current_user, data)
        return sale, _location(f"flash-sales/{sale.id}")


@flash_sales_blp.route("/<int:sale_id>")
class FlashSaleById(MethodView):
    @flash_sales_blp.auth_required(Role.ADMIN)
    @flash_sales_blp.errors(404)
    @flash_sales_blp.response(200, FlashSaleSchema)
    def get(self, sale_id: int) -> FlashSale:
        """Get a flash sale (ended ones too)"""
        return flash_sales.get_flash_sale(sale_id)

    @flash_sales_blp.auth_required(Role.ADMIN)
    @flash_sales_blp.arguments(FlashSaleUpdateSchema, required=False)
    @flash_sales_blp.errors(404)
    @flash_sales_blp.response(200, FlashSaleSchema)
    def patch(self, data: dict[str, Any], sale_id: int) -> FlashSale:
        """Change a flash sale (orders placed keep the price they were charged)"""
        return flash_sales.update_flash_sale(current_user, sale_id, data)

    @flash_sales_blp.auth_required(Role.ADMIN)
    @flash_sales_blp.errors(404)
    @flash_sales_blp.response(204)
    def delete(self, sale_id: int) -> None:
        """Delete a flash sale"""
        flash_sales.delete_flash_sale(current_user, sale_id)
