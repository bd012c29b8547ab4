"""Who may act on which object: the ownership rules of shop, one policy per resource.

Two checks stand between a request and an object. The route says which roles may call it at
all (`Blueprint.auth_required`, published as the operation's `x-roles`; anyone else is a
403). The resource's policy below says which objects a caller of such a role may act on: the
roles of `every` act on all of them, the roles of `own` only on those whose owner is them.
An object the caller may not act on is answered as missing (404), so an id never tells whose
it is. Services ask here (`allows`, `check`, or `scope` for a query) and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, true
from sqlalchemy.orm import QueryableAttribute

from shop.auth.models import User
from shop.errors import NotFound
from shop.security import Role

Owner = ColumnElement[Any] | QueryableAttribute[Any]  # a model's owner column


@dataclass(frozen=True)
class Policy:
    resource: str
    every: frozenset[Role] = frozenset()  # act on every object
    own: frozenset[Role] = frozenset()  # act on the objects they own

    def covers_all(self, actor: User) -> bool:
        """Whether `actor` acts on every object of the resource, whoever owns it."""
        return any(actor.has_role(role) for role in self.every)

    def _own(self, actor: User) -> bool:
        return any(actor.has_role(role) for role in self.own)

    def allows(self, actor: User | None, owner_id: int | None) -> bool:
        """Whether `actor` may act on an object owned by `owner_id` (None: the store's)."""
        if actor is None:
            return False
        return self.covers_all(actor) or (self._own(actor) and owner_id == actor.id)

    def check(self, actor: User | None, owner_id: int | None, label: str) -> None:
        """NotFound naming `label` (e.g. "Product 7") unless `actor` may act on it."""
        if not self.allows(actor, owner_id):
            raise NotFound(f"{label} does not exist.")

    def scope(self, actor: User, owner: Owner) -> ColumnElement[bool]:
        """A WHERE clause keeping the objects `actor` may act on (`owner`: their owner column)."""
        if self.covers_all(actor):
            return true()
        if self._own(actor):
            return owner == actor.id
        return false()

    def owner_for(self, actor: User) -> int | None:
        """Who owns what `actor` creates: themselves when they act only on their own."""
        return None if self.covers_all(actor) else actor.id


# Orders: their customer (a seller or staff member ordering is a customer too), staff and
# admins. Guests read theirs with the order's access key instead (orders.queries).
ORDERS = Policy("order", every=frozenset({Role.STAFF}), own=frozenset({Role.CUSTOMER}))
# Saved addresses: only their owner.
ADDRESSES = Policy("address", own=frozenset({Role.CUSTOMER}))
# Reviews: changed by their author; removed by their author or an admin.
REVIEWS = Policy("review", own=frozenset({Role.CUSTOMER}))
REVIEW_REMOVAL = Policy(
    "review removal", every=frozenset({Role.ADMIN}), own=frozenset({Role.CUSTOMER})
)
# Product writes (details, variants, images, deletion): admins every product, a seller theirs.
PRODUCTS = Policy("product", every=frozenset({Role.ADMIN}), own=frozenset({Role.SELLER}))
# Manual stock movements: staff and admins on every product, a seller on theirs.
STOCK = Policy("stock", every=frozenset({Role.STAFF}), own=frozenset({Role.SELLER}))
# A seller's view of what sold (GET /seller/orders, /seller/reports/sales): their own lines.
SELLER_LINES = Policy("seller lines", own=frozenset({Role.SELLER}))
