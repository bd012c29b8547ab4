"""URL slugs for categories and products."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select

from shop.db import db
from shop.products.models import Category, Product


def slugify(value: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:200] or "item"


def unique_slug(model: type[Category] | type[Product], name: str) -> str:
    base = slugify(name)
    taken = set(db.session.scalars(select(model.slug).where(model.slug.like(f"{base}%"))))
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug
