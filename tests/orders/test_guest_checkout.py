"""Guest checkout: an order from a guest cart (X-Cart-Token) with an email, read back with its
access key, idempotent per cart, attached to the account that verifies the email later."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from sqlalchemy import select

from shop.audit.models import AuditLog
from shop.db import db
from shop.merchandising.coupons import create_coupon
from shop.merchandising.models import coupon_redemptions
from shop.orders.models import Order
from tests.conftest import text_of
from tests.factories import headers_for, ledger_sum, make_product, make_user, stock_of

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
GUEST = {"email": "Guest@Example.com", "shipping_address": SHIP_TO}


def new_cart(client):
    return {"X-Cart-Token": client.post(f"{API}/carts").json["token"]}


def fill(client, headers, *lines):
    for product, quantity in lines:
        body = {"product_id": product.id, "quantity": quantity}
        assert client.post(f"{API}/cart/items", headers=headers, json=body).status_code == 201


def test_a_guest_orders_end_to_end_and_reads_the_order_with_its_key(client, app, mailbox, run_jobs):
    pen = make_product(app, price=Decimal("20.00"), stock=10)
    guest = new_cart(client)
    fill(client, guest, (pen, 2))
    with app.app_context():
        create_coupon(None, {"code": "GUEST10", "kind": "percent", "value": Decimal("10")})  # type: ignore[arg-type]
    assert (
        client.put(f"{API}/cart/coupon", headers=guest, json={"code": "GUEST10"}).status_code == 200
    )
    preview = client.post(f"{API}/checkout/preview", headers=guest, json=GUEST)
    assert preview.status_code == 200, preview.json
    assert (preview.json["discount"], preview.json["total"]) == ("4.00", "41.00")

    placed = client.post(f"{API}/orders", headers=guest, json=GUEST)
    assert placed.status_code == 201, placed.json
    order = placed.json
    assert order["user_id"] is None and order["guest_email"] == "Guest@Example.com"
    assert order["total"] == preview.json["total"] and order["coupon_code"] == "GUEST10"
    key = order["access_key"]
    assert isinstance(key, str) and len(key) >= 32
    assert stock_of(app, pen.id) == ledger_sum(app, pen.id) == 8
    assert client.get(f"{API}/cart", headers=guest).json["items"] == []  # the cart is ordered

    url = f"{API}/orders/{order['id']}"
    by_query = client.get(f"{url}?key={key}")
    assert by_query.status_code == 200
    assert by_query.json["access_key"] is None  # answered once, at the order
    assert {k: v for k, v in by_query.json.items() if k != "access_key"} == {
        k: v for k, v in order.items() if k != "access_key"
    }
    assert client.get(url, headers={"X-Order-Key": key}).status_code == 200
    assert client.get(f"{url}?key=wrong").status_code == 404
    assert client.get(url, headers={"X-Order-Key": "wrong"}).status_code == 404
    assert client.get(url).status_code == 401
    with app.app_context():
        stored = db.session.get(Order, order["id"])
        assert stored.access_key_hash and key not in stored.access_key_hash
        [entry] = db.session.scalars(select(AuditLog).where(AuditLog.action == "order.created"))
        assert entry.actor_id is None

    assert run_jobs() >= 1
    [email] = mailbox.to("Guest@Example.com")
    assert order["number"] in email["Subject"]
    assert f"/orders/{order['id']}?key={key}" in text_of(email)


def test_another_order_s_key_or_cart_is_a_404(client, app, as_customer):
    pen = make_product(app, stock=10)
    first, second = new_cart(client), new_cart(client)
    body = {**GUEST, "items": [{"product_id": pen.id, "quantity": 1}]}
    one = client.post(f"{API}/orders", headers=first, json=body).json
    two = client.post(f"{API}/orders", headers=second, json=body).json
    assert client.get(f"{API}/orders/{two['id']}?key={one['access_key']}").status_code == 404
    assert client.get(f"{API}/orders/{one['id']}?key={one['access_key']}").status_code == 200
    # A customer's token does not read a guest's order; staff do.
    assert client.get(f"{API}/orders/{one['id']}", headers=as_customer).status_code == 404
    staff = headers_for(app, make_user(app, role="staff"))
    assert client.get(f"{API}/orders/{one['id']}", headers=staff).status_code == 200
    unknown = client.post(f"{API}/orders", headers={"X-Cart-Token": "gone"}, json=body)
    assert unknown.status_code == 404
    # A signed-in customer's order answers no key and needs none.
    mine = client.post(f"{API}/orders", headers=as_customer, json=body)
    assert mine.status_code == 201 and mine.json["access_key"] is None


def test_a_guest_needs_an_email_and_a_written_address(client, app):
    pen = make_product(app, stock=10)
    guest = new_cart(client)
    items = [{"product_id": pen.id, "quantity": 1}]
    no_email = client.post(
        f"{API}/orders", headers=guest, json={"items": items, "shipping_address": SHIP_TO}
    )
    assert no_email.status_code == 422 and "email" in no_email.json["errors"]
    saved = client.post(
        f"{API}/orders", headers=guest, json={"items": items, "address_id": 1, "email": "a@b.co"}
    )
    assert saved.status_code == 422 and "address_id" in saved.json["errors"]
    empty = client.post(f"{API}/orders", headers=guest, json=GUEST)
    assert empty.status_code == 409


def test_without_guest_checkout_a_cart_token_is_as_no_credentials(other_app, app):
    closed = other_app(GUEST_CHECKOUT=False).test_client()
    pen = make_product(app, stock=10)
    guest = new_cart(closed)
    fill(closed, guest, (pen, 1))  # carts still work (to merge at sign-in)
    refused = closed.post(f"{API}/orders", headers=guest, json=GUEST)
    assert refused.status_code == 401
    assert closed.post(f"{API}/orders", json=GUEST).status_code == 401
    assert stock_of(app, pen.id) == 10


def test_a_guest_s_idempotency_keys_are_their_cart_s(client, app):
    pen = make_product(app, stock=10)
    first, second = new_cart(client), new_cart(client)
    fill(client, first, (pen, 1))
    fill(client, second, (pen, 1))
    key = {"Idempotency-Key": "checkout-1"}
    one = client.post(f"{API}/orders", headers={**first, **key}, json=GUEST)
    again = client.post(f"{API}/orders", headers={**first, **key}, json=GUEST)
    assert one.status_code == again.status_code == 201
    assert again.get_data() == one.get_data()  # the same answer, key included
    other = client.post(f"{API}/orders", headers={**second, **key}, json=GUEST)
    assert other.status_code == 201 and other.json["id"] != one.json["id"]
    changed = client.post(
        f"{API}/orders", headers={**first, **key}, json={**GUEST, "notes": "other body"}
    )
    assert changed.status_code == 409
    with app.app_context():
        assert len(db.session.scalars(select(Order)).all()) == 2
    assert stock_of(app, pen.id) == 8


def register_and_verify(client, mailbox, run_jobs, email):
    body = {"email": email, "password": "Correct-horse-9", "first_name": "Gus"}
    assert client.post(f"{API}/auth/register", json=body).status_code == 201
    run_jobs()
    [message] = mailbox.to(email.lower())
    code = re.search(r"\b(\d{6})\b", text_of(message)).group(1)
    verified = client.post(f"{API}/auth/verify-email", json={"email": email, "code": code})
    assert verified.status_code == 204


def test_verifying_the_email_attaches_the_guest_orders(client, app, mailbox, run_jobs):
    pen = make_product(app, stock=10)
    with app.app_context():
        create_coupon(
            None, {"code": "ONCE", "kind": "percent", "value": Decimal("10"), "max_per_customer": 1}
        )  # type: ignore[arg-type]
    body = {**GUEST, "items": [{"product_id": pen.id, "quantity": 1}], "coupon_code": "ONCE"}
    placed = client.post(f"{API}/orders", headers=new_cart(client), json=body).json
    other = {**body, "email": "someone@example.com"}
    client.post(f"{API}/orders", headers=new_cart(client), json=other)
    run_jobs()
    mailbox.messages.clear()
    register_and_verify(client, mailbox, run_jobs, "guest@example.com")
    run_jobs()  # the durable subscriber, after the verification's commit
    with app.app_context():
        orders = {o.guest_email: o.user_id for o in db.session.scalars(select(Order))}
        user_id = orders["Guest@Example.com"]
        assert user_id is not None and orders["someone@example.com"] is None
        redemption = db.session.execute(
            select(coupon_redemptions.c.user_id).where(
                coupon_redemptions.c.order_id == placed["id"]
            )
        ).scalar()
        assert redemption == user_id
    login = client.post(
        f"{API}/auth/login", json={"email": "guest@example.com", "password": "Correct-horse-9"}
    )
    me = {"Authorization": f"Bearer {login.json['access_token']}"}
    mine = client.get(f"{API}/orders", headers=me).json
    assert [o["id"] for o in mine["items"]] == [placed["id"]]
    # The limit per customer now counts the guest order: ONCE is used up for this account.
    again = client.post(f"{API}/orders", headers=me, json=body)
    assert again.status_code == 409 and "coupon_code" in again.json["errors"]
    # The key still reads it.
    assert client.get(f"{API}/orders/{placed['id']}?key={placed['access_key']}").status_code == 200


def test_simultaneous_guest_checkouts_with_one_key_make_one_order(app, client):
    """A double click of a guest: six identical requests at once, one cart, one key."""
    pen = make_product(app, stock=50)
    guest = new_cart(client)
    fill(client, guest, (pen, 1))
    headers = {**guest, "Idempotency-Key": "double-click"}
    barrier = threading.Barrier(6)

    def submit(_):
        barrier.wait()
        response = app.test_client().post(f"{API}/orders", headers=headers, json=GUEST)
        return response.status_code, response.get_data()

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(submit, range(6)))
    assert {status for status, _ in results} <= {201, 409}
    assert len({body for status, body in results if status == 201}) == 1
    with app.app_context():
        assert len(db.session.scalars(select(Order)).all()) == 1
    assert stock_of(app, pen.id) == ledger_sum(app, pen.id) == 49


def test_merging_two_guest_carts_at_once_into_one_account_adds_both(app, client):
    """Two merges racing for one user's cart: both guests' lines end up there, once each."""
    pen, pad = make_product(app, stock=50), make_product(app, stock=50)
    first, second = new_cart(client), new_cart(client)
    fill(client, first, (pen, 2), (pad, 1))
    fill(client, second, (pen, 3))
    headers = headers_for(app, make_user(app))
    barrier = threading.Barrier(2)

    def merge(cart):
        barrier.wait()
        token = cart["X-Cart-Token"]
        return app.test_client().post(f"{API}/cart/merge", headers=headers,
                                      json={"token": token}).status_code  # fmt: skip

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert sorted(pool.map(merge, (first, second))) == [200, 200]
    lines = client.get(f"{API}/cart", headers=headers).json["items"]
    assert sorted((line["product_id"], line["quantity"]) for line in lines) == sorted(
        [(pen.id, 5), (pad.id, 1)]
    )
    for cart in (first, second):
        assert client.get(f"{API}/cart", headers=cart).status_code == 404
