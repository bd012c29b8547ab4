"""Catalog domain."""

from shop.products.routes import blp

__all__ = ["blp"]
