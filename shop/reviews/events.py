"""Events the reviews domain publishes (see shop.bus)."""

from __future__ import annotations

from dataclasses import dataclass

from shop.bus import Event


@dataclass(frozen=True)
class ReviewRated(Event, name="review.rated"):
    """A review's rating given (a new review) or changed, in this unit of work."""

    review_id: int
    user_id: int
    product_id: int
    rating: int
