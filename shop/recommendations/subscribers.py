"""What recommendations do when other domains' events arrive (registered by create_app): a
review's rating recorded as an interaction once it commits (reports records the others;
reviews is its sibling)."""

from __future__ import annotations

from typing import Any

from shop import tracking
from shop.bus import Subscriber
from shop.reviews.events import ReviewRated


def _rated(event: ReviewRated) -> None:
    tracking.record_after_commit(
        tracking.Fact.RATING, user_id=event.user_id, product_id=event.product_id,
        value=event.rating,
    )  # fmt: skip


SUBSCRIBERS: tuple[Subscriber[Any], ...] = (Subscriber(ReviewRated, _rated),)
