"""Guest carts: made by anyone (rate-limited), reached with X-Cart-Token by every /cart call,
capped in lines, merged into a user's at sign-in, purged when idle."""

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update

from shop.db import db, utcnow
from shop.merchandising.coupons import create_coupon
from shop.orders.cart import token_hash
from shop.orders.models import Cart, CartItem
from shop.orders.schemas import MAX_CART_LINES
from shop.schedule import run_job
from tests.factories import make_product, make_variant

API = "/api/v1"


def new_cart(client):
    made = client.post(f"{API}/carts")
    assert made.status_code == 201, made.json
    assert made.headers["Location"] == "/api/v1/cart"
    return {"X-Cart-Token": made.json["token"]}


def add(client, headers, product, quantity=1, **extra):
    body = {"product_id": product.id, "quantity": quantity, **extra}
    return client.post(f"{API}/cart/items", headers=headers, json=body)


def test_a_guest_cart_works_as_a_signed_in_one(client, app):
    guest = new_cart(client)
    pen = make_product(app, price=Decimal("2.50"), stock=10)
    first = add(client, guest, pen, 2)
    assert first.status_code == 201
    assert add(client, guest, pen, 3).json["quantity"] == 5
    cart = client.get(f"{API}/cart", headers=guest).json
    assert (cart["item_count"], cart["subtotal"]) == (5, "12.50")
    line = f"{API}/cart/items/{first.json['id']}"
    assert client.patch(line, headers=guest, json={"quantity": 11}).status_code == 409
    assert client.patch(line, headers=guest, json={"quantity": 4}).json["quantity"] == 4
    with app.app_context():
        create_coupon(None, {"code": "TENOFF", "kind": "percent", "value": Decimal("10")})  # type: ignore[arg-type]
    coupon = client.put(f"{API}/cart/coupon", headers=guest, json={"code": "tenoff"})
    assert coupon.status_code == 200 and coupon.json["discount"] == "1.00"
    assert client.delete(f"{API}/cart/coupon", headers=guest).status_code == 204
    assert client.delete(line, headers=guest).status_code == 204
    assert client.get(f"{API}/cart", headers=guest).json["items"] == []
    assert client.delete(f"{API}/cart", headers=guest).status_code == 204


def test_the_token_is_stored_only_as_its_hash(client, app):
    guest = new_cart(client)
    with app.app_context():
        [cart] = db.session.scalars(select(Cart)).all()
        assert cart.user_id is None and cart.token_hash != guest["X-Cart-Token"]
        assert len(cart.token_hash) == 64


def test_unknown_or_expired_tokens_are_404_and_no_credentials_401(client, app):
    pen = make_product(app, stock=5)
    assert client.get(f"{API}/cart", headers={"X-Cart-Token": "nope"}).status_code == 404
    assert add(client, {"X-Cart-Token": "nope"}, pen).status_code == 404
    assert client.get(f"{API}/cart").status_code == 401
    guest = new_cart(client)
    with app.app_context():
        db.session.execute(update(Cart).values(last_used_at=utcnow() - timedelta(days=31)))
        db.session.commit()
    assert client.get(f"{API}/cart", headers=guest).status_code == 404


def test_another_cart_s_line_is_a_404(client, app, as_customer):
    pen = make_product(app, stock=5)
    mine, theirs = new_cart(client), new_cart(client)
    line = add(client, theirs, pen).json["id"]
    for headers in (mine, as_customer):
        url = f"{API}/cart/items/{line}"
        assert client.patch(url, headers=headers, json={"quantity": 2}).status_code == 404
        assert client.delete(url, headers=headers).status_code == 404
    assert client.get(f"{API}/cart", headers=mine).json["items"] == []
    assert len(client.get(f"{API}/cart", headers=theirs).json["items"]) == 1


def test_last_used_is_written_at_most_once_a_minute(client, app, count_queries):
    guest = new_cart(client)
    with count_queries() as counter:
        client.get(f"{API}/cart", headers=guest)
    assert not any(s.startswith("UPDATE carts") for s in counter.statements)
    with app.app_context():
        db.session.execute(update(Cart).values(last_used_at=utcnow() - timedelta(minutes=2)))
        db.session.commit()
    with count_queries() as counter:
        client.get(f"{API}/cart", headers=guest)
    assert sum(s.startswith("UPDATE carts") for s in counter.statements) == 1
    with app.app_context():
        cart = db.session.scalars(select(Cart)).one()
        assert cart.last_used_at > utcnow() - timedelta(seconds=30)


def test_a_signed_in_user_s_cart_is_made_on_first_write_only(client, app, as_customer):
    pen = make_product(app, stock=5)
    assert client.get(f"{API}/cart", headers=as_customer).json["items"] == []
    assert client.delete(f"{API}/cart", headers=as_customer).status_code == 204
    with app.app_context():
        assert db.session.scalars(select(Cart)).all() == []
    assert add(client, as_customer, pen).status_code == 201
    with app.app_context():
        [cart] = db.session.scalars(select(Cart)).all()
        assert cart.user_id is not None and cart.token_hash is None


def test_a_cart_holds_at_most_the_line_cap(client, app):
    guest = new_cart(client)
    product = make_product(app, stock=0)
    variants = [make_variant(app, product, stock=5) for _ in range(MAX_CART_LINES + 1)]
    with app.app_context():
        cart_id = db.session.scalar(select(Cart.id))
        db.session.add_all(
            CartItem(cart_id=cart_id, product_id=product.id, variant_id=v.id, quantity=1)
            for v in variants[:MAX_CART_LINES]
        )
        db.session.commit()
    over = add(client, guest, product, variant_id=variants[-1].id)
    assert over.status_code == 409 and "at most 100 lines" in over.json["detail"]
    # An existing line may still grow.
    assert add(client, guest, product, variant_id=variants[0].id).json["quantity"] == 2


def test_creating_carts_is_rate_limited_per_address(other_app):
    limited = other_app(CART_CREATE_LIMIT_PER_IP="2 per hour").test_client()
    assert [limited.post(f"{API}/carts").status_code for _ in range(3)] == [201, 201, 429]
    blocked = limited.post(f"{API}/carts")
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert blocked.content_type == "application/problem+json"


def test_idle_guest_carts_are_purged_user_carts_stay(client, app, as_customer):
    pen = make_product(app, stock=5)
    stale, fresh = new_cart(client), new_cart(client)
    for headers in (stale, fresh, as_customer):
        add(client, headers, pen)
    with app.app_context():
        long_ago = utcnow() - timedelta(days=90)
        db.session.execute(update(Cart).values(last_used_at=long_ago))
        db.session.execute(
            update(Cart)
            .where(Cart.token_hash == token_hash(fresh["X-Cart-Token"]))
            .values(last_used_at=utcnow() - timedelta(days=29))
        )
        db.session.commit()
        assert run_job("purge-carts") == {"deleted": 1}
        assert run_job("purge-carts") == {"deleted": 0}
        assert len(db.session.scalars(select(Cart)).all()) == 2
        assert len(db.session.scalars(select(CartItem)).all()) == 2
    assert client.get(f"{API}/cart", headers=stale).status_code == 404
    assert len(client.get(f"{API}/cart", headers=fresh).json["items"]) == 1
    assert len(client.get(f"{API}/cart", headers=as_customer).json["items"]) == 1


# --- merging at sign-in -------------------------------------------------------------------


def test_merge_adds_up_lines_moves_the_coupon_and_deletes_the_guest_cart(client, app, as_customer):
    pen, pad, ink = (make_product(app, stock=10) for _ in range(3))
    guest = new_cart(client)
    add(client, guest, pen, 2)
    add(client, guest, pad, 1)
    add(client, as_customer, pen, 3)
    add(client, as_customer, ink, 1)
    with app.app_context():
        create_coupon(None, {"code": "MOVE", "kind": "percent", "value": Decimal("10")})  # type: ignore[arg-type]
    client.put(f"{API}/cart/coupon", headers=guest, json={"code": "MOVE"})
    merged = client.post(
        f"{API}/cart/merge", headers=as_customer, json={"token": guest["X-Cart-Token"]}
    )
    assert merged.status_code == 200, merged.json
    quantities = {line["product_id"]: line["quantity"] for line in merged.json["items"]}
    assert quantities == {pen.id: 5, pad.id: 1, ink.id: 1}
    assert merged.json["coupon_code"] == "MOVE"
    assert client.get(f"{API}/cart", headers=guest).status_code == 404
    again = client.post(
        f"{API}/cart/merge", headers=as_customer, json={"token": guest["X-Cart-Token"]}
    )
    assert again.status_code == 404


def test_merge_keeps_the_user_s_own_coupon(client, app, as_customer):
    pen = make_product(app, stock=10)
    with app.app_context():
        for code in ("MINE", "THEIRS"):
            create_coupon(None, {"code": code, "kind": "percent", "value": Decimal("5")})  # type: ignore[arg-type]
    guest = new_cart(client)
    add(client, guest, pen)
    add(client, as_customer, pen)
    client.put(f"{API}/cart/coupon", headers=guest, json={"code": "THEIRS"})
    client.put(f"{API}/cart/coupon", headers=as_customer, json={"code": "MINE"})
    body = {"token": guest["X-Cart-Token"]}
    merged = client.post(f"{API}/cart/merge", headers=as_customer, json=body)
    assert merged.json["coupon_code"] == "MINE"


def test_merge_short_of_stock_is_a_409_naming_the_line_and_moves_nothing(client, app, as_customer):
    pen, pad = make_product(app, stock=4), make_product(app, stock=10)
    guest = new_cart(client)
    short = add(client, guest, pen, 3).json["id"]
    add(client, guest, pad, 1)
    add(client, as_customer, pen, 2)
    body = {"token": guest["X-Cart-Token"]}
    refused = client.post(f"{API}/cart/merge", headers=as_customer, json=body)
    assert refused.status_code == 409
    assert list(refused.json["errors"]["items"]) == [str(short)]
    assert "only 4 in stock" in refused.json["errors"]["items"][str(short)][0]
    assert len(client.get(f"{API}/cart", headers=guest).json["items"]) == 2
    mine = client.get(f"{API}/cart", headers=as_customer).json["items"]
    assert [(line["product_id"], line["quantity"]) for line in mine] == [(pen.id, 2)]


def test_merge_needs_a_signed_in_user_and_a_known_token(client, app, as_customer):
    guest = new_cart(client)
    body = {"token": guest["X-Cart-Token"]}
    assert client.post(f"{API}/cart/merge", json=body).status_code == 401
    assert client.post(f"{API}/cart/merge", headers=guest, json=body).status_code == 401
    unknown = client.post(f"{API}/cart/merge", headers=as_customer, json={"token": "x"})
    assert unknown.status_code == 404
    assert client.post(f"{API}/cart/merge", headers=as_customer, json={}).status_code == 422
