"""Accounts and users domain."""

from shop.auth.routes import blp

__all__ = ["blp"]
