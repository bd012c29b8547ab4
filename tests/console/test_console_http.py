"""The staff console (/admin/) through the Flask test client: signing in (and the 2FA step),
CSRF on every form, customers refused, every page, the two actions through the services with
their audit rows, and the pages' headers (CSP without inline script)."""

import re
from decimal import Decimal

import pyotp
import pytest
from sqlalchemy import select

from shop.audit.models import Action, AuditLog
from shop.db import db
from shop.orders.models import Order
from shop.orders.return_models import Return, ReturnItem, ReturnStatus
from shop.security import Role
from tests.factories import headers_for, make_product, make_user

API = "/api/v1"
PASSWORD = "correct horse battery staple"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def csrf_of(response):
    found = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert found, response.get_data(as_text=True)[:500]
    return found.group(1)


def sign_in(client, email, password=PASSWORD):
    form = client.get("/admin/login")
    return client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form)},
    )


@pytest.fixture
def clerk(app):
    return make_user(app, role=Role.STAFF, email="clerk@example.com", password=PASSWORD)


@pytest.fixture
def signed_in(client, clerk):
    answer = sign_in(client, clerk.email)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    assert answer.headers["Location"].endswith("/admin/")
    return client


def place_paid_order(client, app, product="Pen", buyer="buyer@example.com"):
    pen = make_product(app, name=product, price=Decimal("20.00"), stock=10)
    buyer = make_user(app, email=buyer)
    staff = make_user(app, role=Role.STAFF, email=f"payer-{buyer.id}@example.com")
    order = client.post(
        f"{API}/orders",
        headers=headers_for(app, buyer),
        json={"items": [{"product_id": pen.id, "quantity": 2}], "shipping_address": SHIP_TO},
    ).json
    paid = client.post(
        f"{API}/orders/{order['id']}/payments",
        headers=headers_for(app, staff),
        json={"amount": order["total"], "method": "cash"},
    )
    assert paid.status_code == 201, paid.json
    return order, headers_for(app, buyer), headers_for(app, staff)


def test_pages_need_a_signed_in_staff_member(client):
    for path in ("/admin/", "/admin/ship", "/admin/refunds"):
        answer = client.get(path)
        assert answer.status_code == 303
        assert answer.headers["Location"].endswith("/admin/login")


def test_the_cookie_is_secure_httponly_and_strict(client, clerk):
    answer = sign_in(client, clerk.email)
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("shop_console=")
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/admin"):
        assert flag in cookie


def test_a_wrong_password_is_refused_and_audited(client, clerk, app):
    answer = sign_in(client, clerk.email, "wrong password entirely")
    assert answer.status_code == 401
    assert "Set-Cookie" not in answer.headers or "uid" not in answer.headers["Set-Cookie"]
    assert client.get("/admin/").status_code == 303
    with app.app_context():
        actions = db.session.scalars(select(AuditLog.action)).all()
    assert Action.AUTH_LOGIN_FAILED in actions


def test_a_customer_is_refused_and_their_session_ended(client, app):
    make_user(app, email="cleo@example.com", password=PASSWORD)
    answer = sign_in(client, "cleo@example.com")
    assert answer.status_code == 403
    assert "for staff accounts" in answer.get_data(as_text=True)
    assert client.get("/admin/").status_code == 303
    with app.app_context():
        actions = db.session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions[-2:] == [Action.AUTH_LOGIN, Action.AUTH_SESSION_REVOKED]


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(client, clerk):
    client.get("/admin/login")
    answer = client.post("/admin/login", data={"email": clerk.email, "password": PASSWORD})
    assert answer.status_code == 403
    assert "CSRF" in answer.get_data(as_text=True)
    answer = client.post(
        "/admin/login", data={"email": clerk.email, "password": PASSWORD, "csrf_token": "x"}
    )
    assert answer.status_code == 403
    assert sign_in(client, clerk.email).status_code == 303
    assert client.post("/admin/logout").status_code == 403  # still signed in
    assert client.get("/admin/").status_code == 200
    assert client.post("/admin/orders/1/ship", data={"carrier": "UPS"}).status_code == 403


def test_the_csrf_token_changes_at_sign_in(client, clerk):
    before = csrf_of(client.get("/admin/login"))
    sign_in(client, clerk.email)
    after = csrf_of(client.get("/admin/"))
    assert before != after


def test_every_page_renders_with_its_headers(signed_in, app):
    place_paid_order(signed_in, app)
    for path in ("/admin/", "/admin/?days=90", "/admin/?days=365", "/admin/ship", "/admin/refunds"):
        answer = signed_in.get(path)
        assert answer.status_code == 200, path
        assert answer.mimetype == "text/html"
        [csp] = answer.headers.getlist("Content-Security-Policy")  # its own, not shop.edge's too
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert answer.headers.getlist("X-Content-Type-Options") == ["nosniff"]
        assert answer.headers["Cache-Control"] == "no-store"
        html = answer.get_data(as_text=True)
        assert "<script>" not in html and " style=" not in html
        assert re.findall(r'<script src="([^"]+)"', html) == [
            "/static/vendor/uplot/uPlot.iife.min.js",
            "/static/console/console.js",
        ]
    dashboard = signed_in.get("/admin/").get_data(as_text=True)
    for heading in ("Revenue and orders per day", "Top products", "Order status mix",
                    "Low stock", "Queues", "Webhooks", "Recent audit entries"):  # fmt: skip
        assert heading in dashboard
    assert 'data-chart="sales"' in dashboard and "Pen" in dashboard


def test_the_vendored_chart_library_is_served(client):
    answer = client.get("/static/vendor/uplot/uPlot.iife.min.js")
    assert answer.status_code == 200
    assert b"uPlot" in answer.data[:200]
    answer.close()


def test_mark_shipped_goes_through_the_shipments_service(signed_in, app):
    order, as_buyer, _ = place_paid_order(signed_in, app)
    page = signed_in.get("/admin/ship")
    assert order["number"] in page.get_data(as_text=True)
    answer = signed_in.post(
        f"/admin/orders/{order['id']}/ship",
        data={"carrier": "UPS", "tracking_number": "1Z999", "csrf_token": csrf_of(page)},
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)
    shipments = signed_in.get(f"{API}/orders/{order['id']}/shipments", headers=as_buyer).json
    assert [(s["carrier"], s["tracking_number"]) for s in shipments["items"]] == [("UPS", "1Z999")]
    with app.app_context():
        assert db.session.get(Order, order["id"]).status == "shipped"
        entry = db.session.scalars(
            select(AuditLog).where(AuditLog.action == Action.SHIPMENT_CREATED)
        ).one()
        assert entry.actor_email == "clerk@example.com"
    after = signed_in.get(answer.headers["Location"]).get_data(as_text=True)
    assert (
        f"Order {order['number']} marked shipped." in after
        and f'id="order-{order["id"]}"' not in after
    )


def test_a_refused_shipment_says_why(signed_in, app):
    order, _, _ = place_paid_order(signed_in, app)
    token = csrf_of(signed_in.get("/admin/ship"))
    missing = signed_in.post(
        f"/admin/orders/{order['id']}/ship",
        data={"carrier": "", "tracking_number": "1Z1", "csrf_token": token},
    )
    assert missing.status_code == 422
    assert "carrier" in missing.get_data(as_text=True)
    unknown = signed_in.post(
        "/admin/orders/999999/ship",
        data={"carrier": "UPS", "tracking_number": "1Z2", "csrf_token": token},
    )
    assert unknown.status_code == 404


def test_refunds_owed_lists_money_due_and_records_a_refund(signed_in, app):
    order, _as_buyer, as_staff = place_paid_order(signed_in, app)
    with app.app_context():  # a payment that arrived after the order was cancelled
        row = db.session.get(Order, order["id"])
        row.status, row.refund_due = "cancelled", row.amount_paid
        db.session.commit()
    page = signed_in.get("/admin/refunds")
    assert order["number"] in page.get_data(as_text=True)
    answer = signed_in.post(
        f"/admin/orders/{order['id']}/refund",
        data={
            "amount": order["total"],
            "reason": "paid after cancellation",
            "csrf_token": csrf_of(page),
        },
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)
    refunds = signed_in.get(f"{API}/orders/{order['id']}/refunds", headers=as_staff).json
    assert [r["amount"] for r in refunds["items"]] == [order["total"]]
    with app.app_context():
        assert db.session.get(Order, order["id"]).refund_due == Decimal("0.00")
        entry = db.session.scalars(
            select(AuditLog).where(AuditLog.action == Action.REFUND_CREATED)
        ).one()
        assert entry.actor_email == "clerk@example.com"
    after = signed_in.get(answer.headers["Location"]).get_data(as_text=True)
    assert f"Refund recorded on order {order['number']}." in after
    assert f'id="order-{order["id"]}"' not in after
    too_much = signed_in.post(
        f"/admin/orders/{order['id']}/refund",
        data={"amount": "1.00", "reason": "again", "csrf_token": csrf_of(page)},
    )
    assert too_much.status_code == 409
    assert "can be refunded" in too_much.get_data(as_text=True)


def test_the_notice_after_an_action_is_never_text_from_the_address(signed_in):
    page = signed_in.get("/admin/ship?shipped=Call+0800+now").get_data(as_text=True)
    assert "Call 0800" not in page
    page = signed_in.get("/admin/refunds?refunded=424242").get_data(as_text=True)
    assert "424242" not in page  # no such order: no notice


def test_sign_out_ends_the_login_session(signed_in, app):
    token = csrf_of(signed_in.get("/admin/"))
    answer = signed_in.post("/admin/logout", data={"csrf_token": token})
    assert answer.status_code == 303
    assert signed_in.get("/admin/").status_code == 303
    with app.app_context():
        actions = db.session.scalars(select(AuditLog.action)).all()
    assert Action.AUTH_SESSION_REVOKED in actions


def test_a_password_change_ends_the_console_session(signed_in, clerk, app):
    assert signed_in.get("/admin/").status_code == 200
    with app.app_context():
        db.session.get(type(clerk), clerk.id).token_version += 1
        db.session.commit()
    assert signed_in.get("/admin/").status_code == 303


def test_a_staff_member_demoted_is_refused(signed_in, clerk, app):
    with app.app_context():
        db.session.get(type(clerk), clerk.id).role = Role.CUSTOMER.value
        db.session.commit()
    assert signed_in.get("/admin/").status_code == 403


def test_two_factor_asks_for_the_code(client, clerk, app):
    secret = pyotp.random_base32()
    with app.app_context():
        user = db.session.get(type(clerk), clerk.id)
        user.totp_secret = secret
        user.totp_enabled_at = user.created_at
        db.session.commit()
    step = sign_in(client, clerk.email)
    assert step.status_code == 200 and "Two-factor code" in step.get_data(as_text=True)
    mfa = re.search(r'name="mfa_token" value="([^"]+)"', step.get_data(as_text=True)).group(1)
    wrong = client.post(
        "/admin/login/2fa", data={"mfa_token": mfa, "code": "000000", "csrf_token": csrf_of(step)}
    )
    assert wrong.status_code == 401
    right = client.post(
        "/admin/login/2fa",
        data={"mfa_token": mfa, "code": pyotp.TOTP(secret).now(), "csrf_token": csrf_of(step)},
    )
    assert right.status_code == 303, right.get_data(as_text=True)
    assert client.get("/admin/").status_code == 200


def test_the_lists_cost_the_same_statements_for_one_order_or_many(signed_in, app, count_queries):
    def owe(order):
        with app.app_context():
            row = db.session.get(Order, order["id"])
            row.status, row.refund_due = "cancelled", row.amount_paid
            db.session.commit()

    first, _, _ = place_paid_order(signed_in, app)
    owe(place_paid_order(signed_in, app, product="Owed", buyer="owed@example.com")[0])
    with count_queries() as one:
        assert first["number"] in signed_in.get("/admin/ship").get_data(as_text=True)
    with count_queries() as one_owed:
        signed_in.get("/admin/refunds")
    for n in range(3):
        place_paid_order(signed_in, app, product=f"S{n}", buyer=f"s{n}@example.com")
        order, _, _ = place_paid_order(signed_in, app, product=f"P{n}", buyer=f"b{n}@example.com")
        owe(order)
    with count_queries() as many:
        assert signed_in.get("/admin/ship").status_code == 200
    with count_queries() as many_owed:
        assert order["number"] in signed_in.get("/admin/refunds").get_data(as_text=True)
    assert one.count == many.count
    assert one_owed.count == many_owed.count


def test_a_return_received_and_not_refunded_is_owed(signed_in, app):
    order, _, _ = place_paid_order(signed_in, app)
    with app.app_context():
        row = db.session.get(Order, order["id"])
        line = row.items[0]
        ret = Return(order_id=row.id, status=ReturnStatus.RECEIVED.value)
        ret.items = [ReturnItem(order_item_id=line.id, quantity=2, reason="broken",
                                received_quantity=2)]  # fmt: skip
        db.session.add(ret)
        db.session.commit()
        return_id = ret.id
    html = signed_in.get("/admin/refunds").get_data(as_text=True)
    assert f'id="return-{return_id}"' in html
    assert f"return #{return_id} received" in html


def test_sign_in_attempts_are_limited_per_address(other_app, clerk):
    limited = other_app(LOGIN_LIMIT_PER_IP="2 per minute").test_client()
    token = csrf_of(limited.get("/admin/login"))
    wrong = {"email": clerk.email, "password": "not the password", "csrf_token": token}
    assert [limited.post("/admin/login", data=wrong).status_code for _ in range(3)] == [
        401,
        401,
        429,
    ]
    refused = limited.post("/admin/login", data=wrong)
    assert refused.mimetype == "text/html"
    assert "Too many sign-in attempts" in refused.get_data(as_text=True)
