"""The one stock path: conditional updates, the ledger in the same transaction, no drift."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import select

from shop.db import db, unit_of_work
from shop.errors import Conflict, NotFound, Unprocessable
from shop.products.models import MovementType, StockMovement
from shop.products.stock import change_stock
from tests.factories import headers_for, ledger_sum, make_product, make_variant, stock_of

API = "/api/v1"


def move(app, product, delta, variant=None, type=MovementType.OUT):
    with app.app_context(), unit_of_work():
        return change_stock(
            product_id=product.id,
            variant_id=variant.id if variant else None,
            delta=delta,
            type=type,
            actor=None,
            reference="test",
        )


def test_stock_never_goes_below_zero(app):
    product = make_product(app, stock=3)
    move(app, product, -3)
    with pytest.raises(Conflict, match="0 available"):
        move(app, product, -1)
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 0


def test_a_refused_variant_move_leaves_the_product_untouched(app):
    product = make_product(app, stock=0)
    small = make_variant(app, product, stock=1)
    make_variant(app, product, stock=9)
    with pytest.raises(Conflict):
        move(app, product, -2, variant=small)
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 10


def test_product_with_variants_moves_by_variant(app):
    product = make_product(app, stock=0)
    make_variant(app, product, stock=4)
    with pytest.raises(Unprocessable):
        move(app, product, 1, type=MovementType.IN)


def test_unknown_product_or_variant(app):
    product = make_product(app)
    other = make_product(app, stock=0)
    foreign = make_variant(app, other)
    with pytest.raises(NotFound), app.app_context(), unit_of_work():
        change_stock(product_id=999999, delta=1, type=MovementType.IN, actor=None)
    with pytest.raises(NotFound):
        move(app, product, 1, variant=foreign)


def test_ledger_rows_record_stock_after(app):
    product = make_product(app, stock=5)
    move(app, product, 7, type=MovementType.IN)
    move(app, product, -2)
    with app.app_context():
        rows = db.session.execute(
            select(StockMovement.quantity, StockMovement.stock_after).order_by(StockMovement.id)
        ).all()
    assert [tuple(r) for r in rows] == [(5, 5), (7, 12), (-2, 10)]


def test_concurrent_stock_patches_keep_the_ledger_consistent(app, admin):
    product = make_product(app, stock=50, price=Decimal("3.00"))
    headers = headers_for(app, admin)

    def patch(stock):
        client = app.test_client()
        return client.patch(
            f"{API}/products/{product.id}", headers=headers, json={"stock": stock}
        ).status_code

    targets = [10, 20, 30, 40, 0, 5, 15, 25] * 3
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(patch, targets))
    assert statuses == [200] * len(targets)
    # Each edit set an exact value: the last one to commit wins, the ledger explains it.
    assert stock_of(app, product.id) in targets
    assert stock_of(app, product.id) == ledger_sum(app, product.id)


def test_parallel_moves_never_oversell(app):
    product = make_product(app, stock=10)

    def take_one(_):
        try:
            move(app, product, -1)
            return True
        except Conflict:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        taken = sum(pool.map(take_one, range(25)))
    assert taken == 10
    assert stock_of(app, product.id) == ledger_sum(app, product.id) == 0
