"""Reviews' part of a user's personal data (shop.privacy): their reviews, exported. The
erasure keeps them as written (their ratings make the products' averages); reviews name their
author by id only, and that account is anonymised, so nothing in them is changed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shop import privacy
from shop.db import db
from shop.reviews.models import Review
from shop.reviews.schemas import ReviewSchema


def _export(user_id: int) -> dict[str, Any]:
    reviews = db.session.scalars(
        select(Review).where(Review.user_id == user_id).order_by(Review.id)
    )
    return {"reviews": ReviewSchema(many=True).dump(reviews)}


PERSONAL_DATA = privacy.Contributor(exports=("reviews.user_id",), export=_export)
