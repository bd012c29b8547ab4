"""Audit trail domain."""

from shop.audit.routes import blp

__all__ = ["blp"]
