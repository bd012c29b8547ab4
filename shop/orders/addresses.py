"""A customer's address book (orders keep their own copy of the address they ship to)."""

from __future__ import annotations

from sqlalchemy import func, select, update

from shop.auth.models import User
from shop.auth.policy import ADDRESSES
from shop.db import Page, db, get_or_404, paginate, unit_of_work
from shop.errors import Conflict
from shop.orders.models import Address
from shop.orders.schemas import AddressCreate, AddressUpdate

MAX_ADDRESSES = 20
ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postal_code", "country", "phone")


def list_addresses(user: User, *, page: int, page_size: int) -> Page:
    stmt = select(Address).where(ADDRESSES.scope(user, Address.user_id)).order_by(Address.id)
    return paginate(stmt, page, page_size)


def own_address(user: User, address_id: int) -> Address:
    return get_or_404(
        Address, address_id, visible=lambda address: ADDRESSES.allows(user, address.user_id)
    )


def shipping_copy(address: Address) -> dict[str, str]:
    """The parts of an address an order keeps."""
    return {name: getattr(address, name) for name in ADDRESS_FIELDS}


def _make_default(user: User, address: Address) -> None:
    db.session.execute(
        update(Address)
        .where(Address.user_id == user.id, Address.id != address.id)
        .values(is_default=False)
    )
    address.is_default = True


def create_address(user: User, data: AddressCreate) -> Address:
    with unit_of_work():
        existing = (
            db.session.scalar(
                select(func.count()).select_from(Address).where(Address.user_id == user.id)
            )
            or 0
        )
        if existing >= MAX_ADDRESSES:
            raise Conflict(f"At most {MAX_ADDRESSES} addresses per account.")
        fields = dict(data)
        wants_default = fields.pop("is_default", False) or existing == 0
        address = Address(user_id=user.id, **fields)
        db.session.add(address)
        db.session.flush()
        if wants_default:
            _make_default(user, address)
    return address


def update_address(user: User, address_id: int, data: AddressUpdate) -> Address:
    with unit_of_work():
        address = own_address(user, address_id)
        fields = dict(data)
        wants_default = fields.pop("is_default", None)
        for name, value in fields.items():
            setattr(address, name, value)
        if wants_default:
            _make_default(user, address)
        elif wants_default is False:
            address.is_default = False
    return address


def delete_address(user: User, address_id: int) -> None:
    with unit_of_work():
        db.session.delete(own_address(user, address_id))
