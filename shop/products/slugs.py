"""URL slugs for categories and products."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select

from shop.db import db
from shop.errors import Conflict
from shop.products.models import Category, Product


def slugify(value: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:200] or "item"


def claim_slug(model: type[Category] | type[Product], slug: str, own_id: int | None) -> None:
    """A slug a client chose must be free (409 naming it; the unique index backs this)."""
    taken = db.session.scalar(select(model.id).where(model.slug == slug, model.id != (own_id or 0)))
    if taken:
        raise Conflict(f"The slug {slug} is already in use.", errors={"slug": ["Already in use."]})


def unique_slug(model: type[Category] | type[Product], name: str) -> str:
    base = slugify(name)
    taken = set(db.session.scalars(select(model.slug).where(model.slug.like(f"{base}%"))))
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug
