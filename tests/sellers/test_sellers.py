"""Sellers: their products (created theirs, changed, stocked, imaged and deleted only by them
or an admin; anyone else's is a 404), ?seller=, and their orders and sales."""

from decimal import Decimal

import pytest

from shop.reports.aggregates import today
from shop.security import Role
from tests.factories import headers_for, make_product, make_user
from tests.products.images import encoded, upload

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
NEW = {"sku": "SELL-1", "name": "Handmade mug", "price": "18.00", "stock": 4}


@pytest.fixture
def seller(app):
    return make_user(app, role=Role.SELLER, first_name="Ada", last_name="Potter")


@pytest.fixture
def as_seller(app, seller):
    return headers_for(app, seller)


@pytest.fixture
def as_rival(app):
    return headers_for(app, make_user(app, role=Role.SELLER))


@pytest.fixture
def mug(client, as_seller):
    response = client.post(f"{API}/products", headers=as_seller, json=NEW)
    assert response.status_code == 201, response.json
    return response.json


def test_a_sellers_product_is_theirs_and_says_so(client, seller, mug):
    assert mug["seller"] == {"id": seller.id, "name": "Ada Potter"}
    shown = client.get(f"{API}/products/{mug['id']}").json
    assert shown["seller"] == {"id": seller.id, "name": "Ada Potter"}


def test_who_may_create_a_product(client, as_customer, as_staff, as_admin):
    assert client.post(f"{API}/products", json=NEW).status_code == 401
    assert client.post(f"{API}/products", headers=as_customer, json=NEW).status_code == 403
    assert client.post(f"{API}/products", headers=as_staff, json=NEW).status_code == 403
    made = client.post(f"{API}/products", headers=as_admin, json=NEW)
    assert made.status_code == 201 and made.json["seller"] is None  # the store's own


def test_a_seller_cannot_claim_another_seller(client, as_seller):
    response = client.post(f"{API}/products", headers=as_seller, json={**NEW, "seller_id": 1})
    assert response.status_code == 422


def test_only_the_owner_or_an_admin_changes_or_deletes_it(
    client, mug, as_seller, as_rival, as_customer, as_staff, as_admin
):
    url = f"{API}/products/{mug['id']}"
    assert client.patch(url, headers=as_rival, json={"name": "Mine"}).status_code == 404
    assert client.delete(url, headers=as_rival).status_code == 404
    assert client.patch(url, headers=as_customer, json={"name": "Mine"}).status_code == 403
    assert client.patch(url, headers=as_staff, json={"name": "Mine"}).status_code == 403
    assert client.patch(url, json={"name": "Mine"}).status_code == 401
    changed = client.patch(url, headers=as_seller, json={"name": "Glazed mug"})
    assert changed.status_code == 200 and changed.json["name"] == "Glazed mug"
    by_admin = client.patch(url, headers=as_admin, json={"is_featured": True})
    assert by_admin.status_code == 200 and by_admin.json["seller"]["name"] == "Ada Potter"
    assert client.delete(url, headers=as_seller).status_code == 204
    assert client.get(url).status_code == 404


def test_a_seller_cannot_touch_the_stores_products(client, app, as_seller):
    store = make_product(app)
    url = f"{API}/products/{store.id}"
    assert client.patch(url, headers=as_seller, json={"name": "Mine"}).status_code == 404
    assert client.delete(url, headers=as_seller).status_code == 404
    movement = {"product_id": store.id, "type": "IN", "quantity": 3}
    assert (
        client.post(f"{API}/inventory/transactions", headers=as_seller, json=movement).status_code
        == 404
    )


def test_variants_of_someone_elses_product_are_404(client, mug, as_seller, as_rival):
    url = f"{API}/products/{mug['id']}/variants"
    client.patch(f"{API}/products/{mug['id']}", headers=as_seller, json={"stock": 0})
    body = {"sku": "SELL-1-L", "name": "Large", "price": "22.00", "stock": 2}
    assert client.post(url, headers=as_rival, json=body).status_code == 404
    made = client.post(url, headers=as_seller, json=body)
    assert made.status_code == 201
    one = f"{url}/{made.json['id']}"
    assert client.patch(one, headers=as_rival, json={"name": "XL"}).status_code == 404
    assert client.delete(one, headers=as_rival).status_code == 404
    assert client.patch(one, headers=as_seller, json={"name": "XL"}).status_code == 200
    assert client.delete(one, headers=as_seller).status_code == 204


def test_images_of_someone_elses_product_are_404(client, mug, as_seller, as_rival):
    path = f"products/{mug['id']}/images"
    assert upload(client, as_rival, path, encoded()).status_code == 404
    made = upload(client, as_seller, path, encoded())
    assert made.status_code == 201, made.json
    one = f"{API}/{path}/{made.json['id']}"
    assert client.patch(one, headers=as_rival, json={"alt": "x"}).status_code == 404
    assert client.delete(one, headers=as_rival).status_code == 404
    assert client.delete(one, headers=as_seller).status_code == 204


def test_a_seller_stocks_their_own_products(client, mug, as_seller, as_rival, as_staff):
    url = f"{API}/inventory/transactions"
    movement = {"product_id": mug["id"], "type": "IN", "quantity": 6}
    assert client.post(url, headers=as_rival, json=movement).status_code == 404
    made = client.post(url, headers=as_seller, json=movement)
    assert made.status_code == 201 and made.json["stock_after"] == 10
    assert client.post(url, headers=as_staff, json=movement).json["stock_after"] == 16
    # The ledger stays staff's to read.
    assert client.get(url, headers=as_seller).status_code == 403


def test_products_of_one_seller(client, app, mug, as_rival):
    make_product(app)
    client.post(f"{API}/products", headers=as_rival, json={**NEW, "sku": "RIVAL-1"})
    listed = client.get(f"{API}/products", query_string={"seller": mug["seller"]["id"]}).json
    assert [p["id"] for p in listed["items"]] == [mug["id"]] and listed["total"] == 1
    assert client.get(f"{API}/products", query_string={"seller": "x"}).status_code == 422


def test_an_admin_makes_a_seller(client, app, as_admin):
    user = make_user(app)
    changed = client.patch(f"{API}/users/{user.id}", headers=as_admin, json={"role": "seller"})
    assert changed.status_code == 200 and changed.json["role"] == "seller"
    made = client.post(f"{API}/products", headers=headers_for(app, user), json=NEW)
    assert made.status_code == 201 and made.json["seller"]["id"] == user.id


# --- their orders and sales ------------------------------------------------------------------


def _order(client, headers, *lines):
    items = [{"product_id": p, "quantity": q} for p, q in lines]
    response = client.post(
        f"{API}/orders", headers=headers, json={"items": items, "shipping_address": SHIP_TO}
    )
    assert response.status_code == 201, response.json
    return response.json


@pytest.fixture
def marketplace(client, app, mug, as_rival, as_customer):
    rivals = client.post(
        f"{API}/products", headers=as_rival, json={**NEW, "sku": "RIVAL-1", "price": "5.00"}
    ).json
    store = make_product(app, price=Decimal("7.00"), stock=50)
    mixed = _order(client, as_customer, (mug["id"], 2), (rivals["id"], 1), (store.id, 1))
    only_store = _order(client, as_customer, (store.id, 3))
    return {"mug": mug, "rivals": rivals, "mixed": mixed, "only_store": only_store}


def test_a_seller_sees_only_their_lines(client, marketplace, as_seller, as_rival):
    mine = client.get(f"{API}/seller/orders", headers=as_seller)
    assert mine.status_code == 200
    assert mine.json["total"] == 1
    (order,) = mine.json["items"]
    assert order["id"] == marketplace["mixed"]["id"]
    assert [line["product_id"] for line in order["items"]] == [marketplace["mug"]["id"]]
    assert order["total"] == "36.00" and order["shipping_address"]["city"] == "Springfield"
    theirs = client.get(f"{API}/seller/orders", headers=as_rival).json["items"]
    assert [[line["sku"] for line in o["items"]] for o in theirs] == [["RIVAL-1"]]


def test_a_seller_sees_the_shipments_carrying_their_lines(
    client, marketplace, as_seller, as_rival, as_staff, count_queries
):
    mixed = marketplace["mixed"]
    paid = client.post(
        f"{API}/orders/{mixed['id']}/payments",
        headers=as_staff,
        json={"amount": mixed["total"], "method": "cash"},
    )
    assert paid.status_code == 201, paid.json
    mug_line, rival_line, store_line = (line["id"] for line in mixed["items"])

    def ship(tracking_number, *lines):
        body = {
            "carrier": "UPS",
            "tracking_number": tracking_number,
            "items": [{"order_item_id": line, "quantity": quantity} for line, quantity in lines],
        }
        made = client.post(f"{API}/orders/{mixed['id']}/shipments", headers=as_staff, json=body)
        assert made.status_code == 201, made.json
        return made.json

    both = ship("1ZMIXED", (mug_line, 1), (store_line, 1))
    ship("1ZRIVAL", (rival_line, 1))
    with count_queries() as before:
        client.get(f"{API}/seller/orders", headers=as_seller)
    last = ship("1ZMUG", (mug_line, 1))
    with count_queries() as after:
        (order,) = client.get(f"{API}/seller/orders", headers=as_seller).json["items"]
    assert after.count == before.count
    assert [s["tracking_number"] for s in order["shipments"]] == ["1ZMIXED", "1ZMUG"]
    assert [s["items"] for s in order["shipments"]] == [
        [{"order_item_id": mug_line, "quantity": 1}],  # not the store's unit beside it
        [{"order_item_id": mug_line, "quantity": 1}],
    ]
    assert order["shipments"][0]["id"] == both["id"] and order["shipments"][1]["id"] == last["id"]
    (theirs,) = client.get(f"{API}/seller/orders", headers=as_rival).json["items"]
    assert [s["tracking_number"] for s in theirs["shipments"]] == ["1ZRIVAL"]


def test_seller_orders_are_for_sellers(client, as_customer, as_staff, as_admin):
    assert client.get(f"{API}/seller/orders").status_code == 401
    assert client.get(f"{API}/seller/orders", headers=as_customer).status_code == 403
    assert client.get(f"{API}/seller/orders", headers=as_staff).status_code == 403
    # An admin has every role: the lines of products they own (none here).
    assert client.get(f"{API}/seller/orders", headers=as_admin).json["total"] == 0
    bad = client.get(f"{API}/seller/orders", headers=as_admin, query_string={"status": "lost"})
    assert bad.status_code == 422


def test_seller_orders_cost_the_same_queries_whatever_the_page(
    client, app, mug, as_seller, count_queries
):
    buyer = headers_for(app, make_user(app))
    for _ in range(4):
        _order(client, buyer, (mug["id"], 1))
    counts = []
    for size in (1, 4):
        with count_queries() as counter:
            page = client.get(
                f"{API}/seller/orders", headers=as_seller, query_string={"page_size": size}
            )
        assert len(page.json["items"]) == size
        counts.append(counter.count)
    assert counts[0] == counts[1]


def test_a_sellers_sales_report_counts_their_paid_lines(
    client, marketplace, as_seller, as_rival, as_staff, as_customer
):
    day = today().isoformat()
    args = {"period": "day", "start": day, "end": day}
    url = f"{API}/seller/reports/sales"
    before = client.get(url, headers=as_seller, query_string=args).json
    assert before["totals"] == {"orders": 0, "items": 0, "revenue": "0.00"}  # pending
    for order in (marketplace["mixed"], marketplace["only_store"]):
        paid = client.patch(
            f"{API}/orders/{order['id']}/status", headers=as_staff, json={"status": "paid"}
        )
        assert paid.status_code == 200
    mine = client.get(url, headers=as_seller, query_string=args).json
    assert mine["totals"] == {"orders": 1, "items": 2, "revenue": "36.00"}
    rivals = client.get(url, headers=as_rival, query_string=args).json
    assert rivals["totals"] == {"orders": 1, "items": 1, "revenue": "5.00"}
    store = client.get(f"{API}/reports/sales", headers=as_staff, query_string=args).json
    assert store["totals"]["orders"] == 2
    csv = client.get(url, headers=as_seller, query_string={**args, "format": "csv"})
    assert csv.mimetype == "text/csv" and "36.00" in csv.get_data(as_text=True)
    assert client.get(url, headers=as_customer, query_string=args).status_code == 403
    assert client.get(url, headers=as_staff, query_string=args).status_code == 403
    assert client.get(url, query_string=args).status_code == 401
    assert client.get(url, headers=as_seller, query_string={"period": "x"}).status_code == 422


def test_a_seller_shops_as_a_customer(client, app, as_seller, as_customer):
    store = make_product(app)
    placed = _order(client, as_seller, (store.id, 1))
    assert client.get(f"{API}/orders/{placed['id']}", headers=as_seller).status_code == 200
    assert client.get(f"{API}/orders/{placed['id']}", headers=as_customer).status_code == 404
    assert [o["id"] for o in client.get(f"{API}/orders", headers=as_seller).json["items"]] == [
        placed["id"]
    ]
