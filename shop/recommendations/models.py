"""What the `recommendations` job stores: each product's lists (bought together, similar) and
each customer's, per algorithm, best first. The recommended products are not foreign keys:
the job rewrites every row, and a read joins products (a deleted one drops out there)."""

from __future__ import annotations

import enum

from sqlalchemy import Float, ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from shop.db import Base


class Algorithm(enum.StrEnum):
    COLLABORATIVE = "collaborative"
    CONTENT_BASED = "content_based"
    HYBRID = "hybrid"


class ProductList(enum.StrEnum):
    BOUGHT_TOGETHER = "bought_together"
    SIMILAR = "similar"


class Reason(enum.StrEnum):
    """Why an item is recommended."""

    BOUGHT_TOGETHER = "bought_together"  # bought by the customers who bought this one
    SIMILAR = "similar"  # same category, words and attributes
    CUSTOMERS_ALSO_BOUGHT = "customers_also_bought"  # by those who bought what you did
    LIKE_YOUR_PRODUCTS = "like_your_products"  # similar to what you bought, carted, wished for
    BEST_SELLER_IN_CATEGORY = "best_seller_in_category"  # of the categories you viewed
    BEST_SELLER = "best_seller"


class ProductRecommendation(Base):
    __tablename__ = "product_recommendations"

    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    list: Mapped[str] = mapped_column(String(16), primary_key=True)  # ProductList
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    recommended_id: Mapped[int]
    score: Mapped[float] = mapped_column(Float)


class UserRecommendation(Base):
    __tablename__ = "user_recommendations"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    algorithm: Mapped[str] = mapped_column(String(16), primary_key=True)  # Algorithm
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    recommended_id: Mapped[int]
    score: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(32))  # Reason
