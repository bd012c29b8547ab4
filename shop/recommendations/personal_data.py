"""Recommendations' part of a user's personal data (shop.privacy): the lists computed for
them are derived from what reports exports and are recomputed by the hourly job, so they are
not exported; erasing deletes them."""

from __future__ import annotations

from sqlalchemy import delete

from shop import privacy
from shop.db import db
from shop.recommendations.models import UserRecommendation


def _erase(erasure: privacy.Erasure) -> None:
    db.session.execute(
        delete(UserRecommendation).where(UserRecommendation.user_id == erasure.user_id)
    )


PERSONAL_DATA = privacy.Contributor(
    erase=_erase,
    not_exported={
        "user_recommendations.user_id": "derived from the interactions and orders exported, "
        "recomputed every hour",
    },
)
