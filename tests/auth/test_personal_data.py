"""Personal data: GET /auth/me/export (everything stored about the user, a section per kind)
and DELETE /auth/me (the account anonymised: it cannot log in, its tokens stop at once, its
email may register again; its orders stay and still add up in the reports)."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from shop import privacy
from shop.audit.models import Action, AuditLog, Target
from shop.audit.services import record
from shop.auth.events import UserEmailVerified
from shop.auth.models import LoginSession, PhoneCode, RecoveryCode, RefreshToken, User, UserToken
from shop.db import db, unit_of_work, utcnow
from shop.merchandising.models import WishlistItem
from shop.orders.models import Address, Cart, Order
from shop.orders.subscribers import attach_guest_orders
from shop.recommendations.models import UserRecommendation
from shop.reports.models import Interaction, SessionLogin
from shop.security import Role, digest
from tests.conftest import text_of
from tests.factories import PASSWORD, bearer, headers_for, make_product, make_user

API = "/api/v1"
SHIP_TO = {"line1": "1 Analytical Way", "city": "London", "postal_code": "N1 1AA", "country": "GB"}
NUMBER = "+16502530000"
EMAIL = "Ada.Lovelace@example.com"
SECTIONS = {
    "profile", "two_factor", "sessions", "codes", "addresses", "cart", "orders", "wishlist",
    "reviews", "events", "audit_entries", "interactions",
}  # fmt: skip


def login(client, email, password=PASSWORD):
    return client.post(
        f"{API}/auth/login",
        json={"email": email, "password": password},
        headers={"User-Agent": "Laptop/2.0"},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )


def erase(client, headers, password=PASSWORD):
    return client.delete(f"{API}/auth/me", headers=headers, json={"password": password})


def place(client, headers, *lines, **body):
    items = [{"product_id": p.id, "quantity": q} for p, q in lines]
    made = client.post(
        f"{API}/orders", headers=headers, json={"items": items, "shipping_address": SHIP_TO, **body}
    )
    assert made.status_code == 201, made.json
    return made.json


def pay(client, staff, order):
    paid = client.post(
        f"{API}/orders/{order['id']}/payments",
        headers=staff,
        json={"amount": order["total"], "method": "cash"},
    )
    assert paid.status_code == 201, paid.json


@pytest.fixture
def goods(app):
    return make_product(app, price=Decimal("20.00"), stock=50), make_product(app, stock=50)


@pytest.fixture
def ada(app):
    return make_user(
        app,
        email=EMAIL,
        first_name="Ada",
        last_name="Lovelace",
        phone=NUMBER,
        phone_verified_at=utcnow(),
        date_of_birth=date(1990, 12, 10),
    )


@pytest.fixture
def ada_with_everything(app, client, ada, goods, as_staff, as_admin):
    """Ada with a row of every kind: a login, an address, a paid and refunded order, a
    guest order she took over, a review, the wishlist, the cart, two-factor, codes sent."""
    pen, pad = goods
    signed_in = login(client, EMAIL)
    assert signed_in.status_code == 200
    headers = bearer(signed_in.json["access_token"])
    assert login(client, EMAIL, "wrong-password-1").status_code == 401  # about her
    address = client.post(f"{API}/addresses", headers=headers, json={**SHIP_TO, "label": "Home"})
    assert address.status_code == 201
    order = place(client, headers, (pen, 2))
    pay(client, as_staff, order)
    refunded = client.post(
        f"{API}/orders/{order['id']}/refunds",
        headers=as_staff,
        json={"amount": "5.00", "reason": "scratched"},
    )
    assert refunded.status_code == 201, refunded.json
    cart = client.post(f"{API}/carts").json
    guest = place(client, {"X-Cart-Token": cart["token"]}, (pad, 1), email=EMAIL.upper())
    with app.app_context():
        attach_guest_orders(UserEmailVerified(user_id=ada.id, email=EMAIL))
    review = {"rating": 5, "title": "Precise", "body": "Computes Bernoulli numbers."}
    assert (
        client.post(f"{API}/products/{pen.id}/reviews", headers=headers, json=review).status_code
        == 201
    )
    assert client.put(f"{API}/wishlist/{pad.id}", headers=headers).status_code in (200, 201)
    added = client.post(
        f"{API}/cart/items", headers=headers, json={"product_id": pad.id, "quantity": 3}
    )
    assert added.status_code == 201, added.json
    for last_name in ("King", "Lovelace"):  # two profile changes in the audit trail
        assert (
            client.patch(
                f"{API}/auth/me", headers=headers, json={"last_name": last_name}
            ).status_code
            == 200
        )
    with app.app_context(), unit_of_work() as session:
        record(Action.USER_UPDATED, actor=None, target_type=Target.USER, target_id=ada.id,
               changes={"note": f"bounced: {EMAIL.lower()}", "role": "customer"})  # fmt: skip
        user = session.get(User, ada.id)
        user.totp_secret, user.totp_enabled_at = "JBSWY3DPEHPK3PXP", utcnow()
        session.add_all(RecoveryCode(user_id=ada.id, digest=digest(f"code-{n}")) for n in range(3))
        session.add(PhoneCode(user_id=ada.id, purpose="login", phone=NUMBER, digest="x" * 64,
                              expires_at=utcnow() + timedelta(minutes=10)))  # fmt: skip
        session.add(Interaction(user_id=ada.id, product_id=pen.id, kind="view"))
        session.add(SessionLogin(session_id="browser-1", user_id=ada.id))
        session.add(
            UserRecommendation(
                user_id=ada.id,
                algorithm="hybrid",
                position=0,
                recommended_id=pad.id,
                score=1.0,
                reason="similar",
            )
        )
    return {"headers": headers, "order": order, "guest": guest, "refresh": signed_in.json}


def test_anonymous_callers_are_401(client):
    assert client.get(f"{API}/auth/me/export").status_code == 401
    assert client.delete(f"{API}/auth/me", json={"password": PASSWORD}).status_code == 401


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.SELLER, Role.STAFF, Role.ADMIN])
def test_every_role_exports_and_erases_itself(client, app, role, admin):
    user = make_user(app, role=role)
    headers = headers_for(app, user)
    exported = client.get(f"{API}/auth/me/export", headers=headers)
    assert exported.status_code == 200
    assert exported.json["user_id"] == user.id and set(exported.json) >= SECTIONS
    assert exported.json["profile"]["email"] == user.email
    assert erase(client, headers).status_code == 204
    assert login(client, user.email).status_code == 401


def test_the_last_active_admin_may_not_go(client, app, admin, as_admin):
    answer = erase(client, as_admin)
    assert answer.status_code == 409 and "last active admin" in answer.json["detail"]
    make_user(app, role=Role.ADMIN, active=False)  # an inactive one does not count
    assert erase(client, as_admin).status_code == 409
    make_user(app, role=Role.ADMIN)
    assert erase(client, as_admin).status_code == 204


def test_two_admins_going_at_once_leave_one(app, admin, as_admin):
    other = make_user(app, role=Role.ADMIN)
    barrier = threading.Barrier(2)

    def go(headers):
        barrier.wait()
        return erase(app.test_client(), headers).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert sorted(pool.map(go, [as_admin, headers_for(app, other)])) == [204, 409]
    with app.app_context():
        active = select(func.count()).where(User.role == Role.ADMIN, User.is_active)
        assert db.session.scalar(active) == 1


def test_a_wrong_or_missing_password_erases_nothing(client, app, customer, as_customer):
    wrong = erase(client, as_customer, "not-my-password-1")
    assert wrong.status_code == 401 and wrong.json["detail"] == "The password is wrong."
    missing = client.delete(f"{API}/auth/me", headers=as_customer, json={})
    assert missing.status_code == 422 and "password" in missing.json["errors"]
    assert client.delete(f"{API}/auth/me", headers=as_customer).status_code == 422
    unknown = client.delete(
        f"{API}/auth/me", headers=as_customer, json={"password": PASSWORD, "email": "x@y.z"}
    )
    assert unknown.status_code == 422
    assert client.get(f"{API}/auth/me", headers=as_customer).json["email"] == customer.email
    assert login(client, customer.email).status_code == 200


def test_the_export_holds_every_section(client, app, ada, ada_with_everything, goods):
    headers = ada_with_everything["headers"]
    data = client.get(f"{API}/auth/me/export", headers=headers).json
    assert set(data) == SECTIONS | {"user_id", "exported_at"}
    profile = data["profile"]
    assert (profile["email"], profile["first_name"], profile["phone"]) == (EMAIL, "Ada", NUMBER)
    assert profile["date_of_birth"] == "1990-12-10" and profile["phone_verified"] is True
    assert data["two_factor"]["enabled"] is True and data["two_factor"]["recovery_codes_left"] == 3
    [session] = data["sessions"]
    assert (session["ip"], session["user_agent"]) == ("203.0.113.7", "Laptop/2.0")
    assert {(c["sent_to"], c["purpose"]) for c in data["codes"]} == {("phone", "login")}
    assert [a["label"] for a in data["addresses"]] == ["Home"]
    assert data["cart"] == [{"product_id": goods[1].id, "variant_id": None, "quantity": 3}]
    order, guest = data["orders"]
    placed = ada_with_everything["order"]
    assert (order["id"], order["total"]) == (placed["id"], placed["total"])
    assert [p["amount"] for p in order["payments"]] == [placed["total"]]
    assert [r["amount"] for r in order["refunds"]] == ["5.00"]
    assert guest["id"] == ada_with_everything["guest"]["id"]
    assert guest["guest_email"] == EMAIL.upper() and guest["payments"] == []
    assert [w["product_id"] for w in data["wishlist"]] == [goods[1].id]
    assert [r["title"] for r in data["reviews"]] == ["Precise"]
    assert [(i["kind"], i["product_id"]) for i in data["interactions"]] == [("view", goods[0].id)]
    assert "order.created" in {e["type"] for e in data["events"]}
    actions = [e["action"] for e in data["audit_entries"]]
    assert {"auth.login", "auth.login_failed", "order.created", "review.created"} <= set(actions)
    failed = next(e for e in data["audit_entries"] if e["action"] == "auth.login_failed")
    assert failed["actor_email"] is None and failed["ip"] is None  # not hers to see who
    text = json.dumps(data)
    for secret in ("JBSWY3DPEHPK3PXP", "password_hash", "digest", "totp_secret", "x" * 64):
        assert secret not in text
    assert ada_with_everything["refresh"]["refresh_token"] not in text


def test_every_column_naming_a_user_is_exported_or_excluded_with_a_reason(app):
    """A new table with a user id fails here until its domain's contributor names it."""
    with app.app_context():
        named: dict[str, str] = {}
        for contributor in privacy.contributors():
            for column in contributor.exports:
                named[column] = "exported"
            for column, reason in contributor.not_exported.items():
                assert len(reason.strip()) > 10, f"{column}: say why it is not exported"
                assert column not in named, f"{column} named twice"
                named[column] = reason
    referencing = {
        f"{table.name}.{column.name}"
        for table in db.metadata.sorted_tables
        for column in table.columns
        for key in column.foreign_keys
        if key.column.table.name == "users"
    }
    assert referencing - set(named) == set(), "columns naming a user no contributor covers"
    assert set(named) - referencing == set(), "contributors name columns that do not exist"


def test_the_export_costs_the_same_for_one_order_or_many(
    client, app, goods, as_staff, count_queries
):
    def export_statements(orders):
        user = make_user(app)
        headers = headers_for(app, user)
        for _ in range(orders):
            order = place(client, headers, (goods[0], 1), (goods[1], 1))
            pay(client, as_staff, order)
            client.post(
                f"{API}/orders/{order['id']}/refunds",
                headers=as_staff,
                json={"amount": "1.00", "reason": "late"},
            )
        with count_queries() as counter:
            exported = client.get(f"{API}/auth/me/export", headers=headers)
        assert exported.status_code == 200 and len(exported.json["orders"]) == orders
        return counter.count

    assert export_statements(1) == export_statements(5)


def test_erasing_anonymises_the_account_and_keeps_its_orders(
    client, app, ada, ada_with_everything, mailbox, run_jobs, as_staff
):
    order = ada_with_everything["order"]
    assert erase(client, ada_with_everything["headers"]).status_code == 204
    run_jobs()
    [farewell] = [m for m in mailbox.to(EMAIL) if "account was deleted" in m["Subject"]]
    assert "Hello Ada" in text_of(farewell)
    with app.app_context():
        user = db.session.get(User, ada.id)
        assert user.email == f"deleted-{ada.id}@invalid" and not user.is_active
        assert (user.first_name, user.last_name, user.phone) == ("", "", "")
        assert user.phone_verified_at is None and user.date_of_birth is None
        assert user.totp_secret is None and user.totp_enabled_at is None
        for model in (Address, WishlistItem, LoginSession, RefreshToken, UserToken, RecoveryCode,
                      PhoneCode, Cart, Interaction, SessionLogin, UserRecommendation):  # fmt: skip
            assert (
                db.session.scalar(
                    select(func.count()).select_from(model).where(model.user_id == ada.id)
                )
                == 0
            ), model
        orders = db.session.scalars(select(Order).where(Order.user_id == ada.id)).all()
        assert len(orders) == 2 and all(o.guest_email is None for o in orders)
        entries = db.session.scalars(select(AuditLog)).all()
        erased = [e for e in entries if e.action == "user.erased"]
        assert [(e.actor_id, e.actor_email) for e in erased] == [(ada.id, user.email)]
        for entry in entries:
            text = json.dumps([entry.actor_email, entry.changes]).lower()
            assert EMAIL.lower() not in text and "king" not in text, (entry.action, text)
        changed = [e.changes for e in entries if e.action == "user.updated"]
        assert {"last_name": {"before": "[erased]", "after": "[erased]"}} in changed
        assert {"note": f"bounced: {user.email}", "role": "customer"} in changed
        assert {e.actor_id for e in entries if e.action == "auth.login"} == {ada.id}
    # Staff still read the order, now the anonymised user's.
    read = client.get(f"{API}/orders/{order['id']}", headers=as_staff).json
    assert read["user_id"] == ada.id and read["total"] == order["total"]
    # Nothing more goes to the placeholder (the staff ships the order: no email queued).
    mailbox.messages.clear()
    for body in ({"status": "processing"}, {"status": "shipped", "tracking_number": "1Z9"}):
        changed = client.patch(f"{API}/orders/{order['id']}/status", headers=as_staff, json=body)
        assert changed.status_code == 200, changed.json
    run_jobs()
    assert mailbox.messages == []


def test_an_erased_account_cannot_log_in_and_its_tokens_stop_at_once(
    client, app, ada, ada_with_everything
):
    tokens = ada_with_everything["refresh"]
    access = bearer(tokens["access_token"])
    assert erase(client, access).status_code == 204
    assert client.get(f"{API}/auth/me", headers=access).status_code == 401
    assert client.get(f"{API}/auth/me/export", headers=access).status_code == 401
    assert (
        client.post(f"{API}/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code
        == 401
    )
    verdict = client.post(f"{API}/auth/token/verify", json={"token": tokens["access_token"]})
    assert verdict.json["valid"] is False
    assert login(client, EMAIL).status_code == 401
    assert login(client, f"deleted-{ada.id}@invalid", "").status_code == 401


def test_the_email_registers_again_as_a_new_account(client, app, ada, ada_with_everything):
    assert erase(client, ada_with_everything["headers"]).status_code == 204
    registered = client.post(
        f"{API}/auth/register", json={"email": EMAIL, "password": "Another-horse-7"}
    )
    assert registered.status_code == 201 and registered.json["id"] != ada.id
    with app.app_context():
        # Verifying the address does not hand the erased account's orders over.
        attach_guest_orders(UserEmailVerified(user_id=registered.json["id"], email=EMAIL))
        mine = db.session.scalar(select(func.count()).where(Order.user_id == registered.json["id"]))
    assert mine == 0
    assert login(client, EMAIL, "Another-horse-7").status_code == 200
    # The verified phone it had is free for another account's (uq_users_verified_phone).
    with app.app_context(), unit_of_work() as session:
        again = session.get(User, registered.json["id"])
        again.phone, again.phone_verified_at = NUMBER, utcnow()


def test_orders_still_add_up_in_the_reports_after_erasure(
    client, app, goods, customer, as_customer, as_staff
):
    for lines in (((goods[0], 2),), ((goods[0], 1), (goods[1], 3))):
        pay(client, as_staff, place(client, as_customer, *lines))
    before = client.get(f"{API}/reports/sales?period=day", headers=as_staff).json
    assert before["totals"]["orders"] == 2
    assert erase(client, as_customer).status_code == 204
    after = client.get(f"{API}/reports/sales?period=day", headers=as_staff).json
    assert after == before


def test_erasing_a_seller_keeps_their_products_naming_no_one(client, app, as_admin):
    seller = make_user(app, role=Role.SELLER, first_name="Grace", last_name="Hopper")
    headers = headers_for(app, seller)
    made = client.post(
        f"{API}/products",
        headers=headers,
        json={"sku": "COBOL-1", "name": "Compiler", "price": "9.00", "stock": 3},
    )
    assert made.status_code == 201, made.json
    url = f"{API}/products/{made.json['id']}"
    assert client.get(url).json["seller"]["name"] == "Grace Hopper"  # cached now
    assert erase(client, headers).status_code == 204
    assert client.get(url).json["seller"] == {"id": seller.id, "name": f"Seller {seller.id}"}
