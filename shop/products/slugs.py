"""URL slugs for categories and products."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from sqlalchemy import or_, select

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
    return unique_slugs(model, [name])[0]


def unique_slugs(model: type[Category] | type[Product], names: list[str]) -> list[str]:
    """A free slug for each name ("rake", then "rake-2", ...), distinct from one another, in
    at most two queries whatever the number of names."""
    bases = [slugify(name) for name in names]
    taken = set(db.session.scalars(select(model.slug).where(model.slug.in_(set(bases)))))
    counts = Counter(bases)
    clashing = {base for base in bases if base in taken or counts[base] > 1}
    if clashing:  # slugify leaves no LIKE wildcard in a base
        taken |= set(
            db.session.scalars(
                select(model.slug).where(or_(*(model.slug.like(f"{b}-%") for b in clashing)))
            )
        )
    slugs = []
    for base in bases:
        slug, n = base, 2
        while slug in taken:
            slug, n = f"{base}-{n}", n + 1
        taken.add(slug)
        slugs.append(slug)
    return slugs
