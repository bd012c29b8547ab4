"""The staff console at /admin/: server-rendered pages for the store's morning work."""

from shop.console.views import blp

__all__ = ["blp"]
