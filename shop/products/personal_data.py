"""The catalog's part of a user's personal data (shop.privacy): nothing is exported (a
seller's products are the store's catalog, and the rest is staff work); erasing a seller
refreshes the cached catalog, whose answers name the seller (`seller: {id, name}`: "Seller
<id>" once the names are gone). Their products stay on sale, as before."""

from __future__ import annotations

from sqlalchemy import exists, select

from shop import privacy
from shop.caching import invalidate
from shop.db import db
from shop.products.cache import CATALOG
from shop.products.models import Product

STAFF_WORK = "an act of the user as staff or seller, for the store (the audit entries record it)"


def _erase(erasure: privacy.Erasure) -> None:
    if db.session.scalar(select(exists().where(Product.seller_id == erasure.user_id))):
        invalidate(CATALOG)


PERSONAL_DATA = privacy.Contributor(
    erase=_erase,
    not_exported={
        "products.seller_id": "the seller's products: the store's catalog, public "
        "(GET /products?seller=); kept, naming the anonymised seller",
        "inventory_transactions.created_by": STAFF_WORK,
        "catalog_imports.created_by": STAFF_WORK,
    },
)
