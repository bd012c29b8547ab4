"""Outbound webhooks against a real local receiver: every delivery verified with the
`standardwebhooks` library (not shop's code), retries on the schedule after 500s and timeouts,
deactivation, redelivery, ping, secret rotation, and the SSRF guard."""

import json
import threading
import time
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook

from shop.audit.models import AuditLog
from shop.db import db, unit_of_work, utcnow
from shop.events import delivery as sending
from shop.events.models import WebhookDelivery, WebhookEndpoint
from tests.conftest import settle_events
from tests.factories import make_product

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


class Receiver(ThreadingHTTPServer):
    """Answers each POST with the next of `answers` (then 200): a status, ("sleep", s) or
    ("redirect", url); keeps every request it got."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers: list = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        server: Receiver = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
        answer = server.answers.pop(0) if server.answers else 200
        if isinstance(answer, tuple) and answer[0] == "sleep":
            time.sleep(answer[1])  # shop has hung up by then: nothing to answer
            return
        if isinstance(answer, tuple) and answer[0] == "redirect":
            self.send_response(302)
            self.send_header("Location", answer[1])
            self.end_headers()
            return
        self.send_response(answer)
        self.end_headers()
        self.wfile.write(b"x" * 5000 if answer == 500 else b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def private_allowed(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE", True)


def add_endpoint(client, headers, url, events=("*",)):
    response = client.post(
        f"{API}/webhooks", headers=headers, json={"url": url, "events": list(events)}
    )
    assert response.status_code == 201, response.json
    return response.json


def order(client, headers, product):
    response = client.post(
        f"{API}/orders",
        headers=headers,
        json={"items": [{"product_id": product.id, "quantity": 1}], "shipping_address": SHIP_TO},
    )
    assert response.status_code == 201
    return response.json


def tick(app, run_jobs):
    settle_events(app)
    with app.app_context():
        result = sending.tick()
    run_jobs()
    return result


def verified(secret, request):
    headers, body = request
    return Webhook(secret).verify(body, headers)


def deliveries(client, headers, endpoint):
    return client.get(f"{API}/webhooks/{endpoint['id']}/deliveries", headers=headers).json["items"]


def make_due(app):
    with app.app_context(), unit_of_work() as session:
        session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow()))


def test_the_role_matrix(client, as_customer, as_staff, as_admin):
    for path in ("/webhooks", "/webhooks/1", "/webhooks/1/deliveries"):
        assert client.get(f"{API}{path}").status_code == 401
        assert client.get(f"{API}{path}", headers=as_customer).status_code == 403
        assert client.get(f"{API}{path}", headers=as_staff).status_code == 403
    assert client.get(f"{API}/webhooks/1", headers=as_admin).status_code == 404
    assert client.post(f"{API}/webhooks/1/ping", headers=as_admin).status_code == 404
    assert (
        client.post(f"{API}/webhooks/1/deliveries/1/redeliver", headers=as_admin).status_code == 404
    )
    assert client.get(f"{API}/webhooks", headers=as_admin).json["items"] == []


def test_an_order_is_delivered_signed_as_standard_webhooks_say(
    client, app, as_customer, as_admin, receiver, run_jobs, private_allowed
):
    endpoint = add_endpoint(client, as_admin, receiver.url, ["order.created"])
    assert endpoint["secret"].startswith("whsec_") and endpoint["failure_count"] == 0
    shown = client.get(f"{API}/webhooks/{endpoint['id']}", headers=as_admin).json
    assert "secret" not in shown and shown["events"] == ["order.created"] and shown["is_active"]
    placed = order(client, as_customer, make_product(app, price=Decimal("9.50"), stock=5))
    assert tick(app, run_jobs)["fanned_out"] == 1
    [request] = receiver.requests
    event = client.get(f"{API}/events", headers=as_admin).json["items"][0]
    assert verified(endpoint["secret"], request) == event
    assert event["data"]["number"] == placed["number"]
    assert request[0]["webhook-id"] == event["id"]
    assert request[0]["content-type"] == "application/json"
    [delivery] = deliveries(client, as_admin, endpoint)
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 1
    assert (delivery["event_id"], delivery["event_type"]) == (event["id"], "order.created")
    assert delivery["response_status"] == 200 and delivery["next_attempt_at"] is None
    # Ticking again sends nothing twice; a status change is not among its events.
    client.patch(
        f"{API}/orders/{placed['id']}/status", headers=as_admin, json={"status": "cancelled"}
    )
    assert tick(app, run_jobs) == {"fanned_out": 0, "sent": 0}
    assert len(receiver.requests) == 1


def test_an_endpoint_gets_only_events_after_it_was_added(
    client, app, as_customer, as_admin, receiver, run_jobs, private_allowed
):
    product = make_product(app, stock=5, low_stock_threshold=0)
    order(client, as_customer, product)
    endpoint = add_endpoint(client, as_admin, receiver.url)
    order(client, as_customer, product)
    tick(app, run_jobs)
    assert [verified(endpoint["secret"], r)["type"] for r in receiver.requests] == ["order.created"]


def test_failures_are_retried_on_the_backoff_schedule_until_the_last_attempt(
    client, app, as_customer, as_admin, receiver, run_jobs, private_allowed, monkeypatch
):
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_ATTEMPTS", 4)
    monkeypatch.setattr(sending, "TIMEOUT", 0.3)
    receiver.answers = [500, ("sleep", 1.0), 503, 500]
    endpoint = add_endpoint(client, as_admin, receiver.url, ["order.created"])
    order(client, as_customer, make_product(app, stock=5, low_stock_threshold=0))
    tick(app, run_jobs)
    waits = []
    for attempt in range(1, 5):
        [delivery] = deliveries(client, as_admin, endpoint)
        assert delivery["attempts"] == attempt
        if attempt < 4:
            assert delivery["status"] == "pending"
            with app.app_context():
                due = db.session.scalar(select(WebhookDelivery.next_attempt_at))
            waits.append((due - utcnow()).total_seconds())
            assert tick(app, run_jobs)["sent"] == 0  # not due yet
            make_due(app)
            assert tick(app, run_jobs)["sent"] == 1
    # The schedule, less the moments a loaded machine takes between the attempt and this read.
    assert all(0 <= due - wait < 5 for wait, due in zip(waits, [30, 120, 600], strict=True)), waits
    assert delivery["status"] == "failed" and delivery["next_attempt_at"] is None
    assert delivery["response_status"] == 500 and delivery["last_error"] == "answered 500"
    assert len(delivery["response_body"]) == 1024  # not more of it is kept
    assert len(receiver.requests) == 4
    # The timed-out attempt, and one id on every attempt.
    assert len({r[0]["webhook-id"] for r in receiver.requests}) == 1
    assert (
        client.get(f"{API}/webhooks/{endpoint['id']}", headers=as_admin).json["failure_count"] == 4
    )


def test_a_timeout_is_a_failed_attempt(
    client, app, as_customer, as_admin, receiver, run_jobs, private_allowed, monkeypatch
):
    monkeypatch.setattr(sending, "TIMEOUT", 0.3)
    receiver.answers = [("sleep", 1.0)]
    endpoint = add_endpoint(client, as_admin, receiver.url)
    order(client, as_customer, make_product(app, stock=5, low_stock_threshold=0))
    tick(app, run_jobs)
    [delivery] = deliveries(client, as_admin, endpoint)
    assert delivery["status"] == "pending" and "Timeout" in delivery["last_error"]
    assert delivery["response_status"] is None


def test_twenty_failures_in_a_row_deactivate_the_endpoint_and_tell_the_admins(
    client, app, as_customer, as_admin, receiver, run_jobs, private_allowed, monkeypatch, mailbox
):
    monkeypatch.setitem(app.config, "ADMIN_EMAILS", ["ops@example.com"])
    receiver.answers = [500] * 25
    endpoint = add_endpoint(client, as_admin, receiver.url)
    product = make_product(app, stock=100, low_stock_threshold=0)
    for _ in range(20):
        order(client, as_customer, product)
    tick(app, run_jobs)
    run_jobs()  # the email
    shown = client.get(f"{API}/webhooks/{endpoint['id']}", headers=as_admin).json
    assert shown["is_active"] is False and shown["failure_count"] == 20
    [message] = mailbox.to("ops@example.com")
    assert receiver.url in message["Subject"]
    with app.app_context():
        assert (
            db.session.scalar(
                select(AuditLog).where(AuditLog.action == "webhook.deactivated")
            ).target_id
            == endpoint["id"]
        )
    # Off: nothing more is sent; back on, what was due goes out again.
    make_due(app)
    assert tick(app, run_jobs)["sent"] == 0
    receiver.answers = []
    turned_on = client.patch(
        f"{API}/webhooks/{endpoint['id']}", headers=as_admin, json={"is_active": True}
    ).json
    assert turned_on["failure_count"] == 0
    assert tick(app, run_jobs)["sent"] == 20
    assert all(d["status"] == "succeeded" for d in deliveries(client, as_admin, endpoint))


def test_redeliver_and_ping(
    client, app, as_customer, as_admin, receiver, run_jobs, private_allowed
):
    receiver.answers = [500]
    endpoint = add_endpoint(client, as_admin, receiver.url)
    order(client, as_customer, make_product(app, stock=5, low_stock_threshold=0))
    tick(app, run_jobs)
    [failed] = deliveries(client, as_admin, endpoint)
    url = f"{API}/webhooks/{endpoint['id']}/deliveries/{failed['id']}/redeliver"
    again = client.post(url, headers=as_admin)
    assert again.status_code == 202 and again.json["attempts"] == 0
    run_jobs()
    [done] = deliveries(client, as_admin, endpoint)
    assert done["status"] == "succeeded" and done["attempts"] == 1
    other = add_endpoint(client, as_admin, receiver.url)
    assert (
        client.post(
            f"{API}/webhooks/{other['id']}/deliveries/{failed['id']}/redeliver", headers=as_admin
        ).status_code
        == 404
    )
    pinged = client.post(f"{API}/webhooks/{endpoint['id']}/ping", headers=as_admin)
    assert pinged.status_code == 202 and pinged.json["event_type"] == "ping"
    run_jobs()
    ping = verified(endpoint["secret"], receiver.requests[-1])
    assert ping["type"] == "ping" and ping["data"] == {"webhook_id": endpoint["id"]}
    assert ping["id"] == receiver.requests[-1][0]["webhook-id"] == pinged.json["event_id"]


def test_a_rotated_secret_signs_with_both_for_a_day(
    client, app, as_customer, as_admin, receiver, run_jobs, private_allowed
):
    endpoint = add_endpoint(client, as_admin, receiver.url)
    rotated = client.post(f"{API}/webhooks/{endpoint['id']}/rotate-secret", headers=as_admin)
    assert rotated.status_code == 200 and rotated.json["secret"] != endpoint["secret"]
    client.post(f"{API}/webhooks/{endpoint['id']}/ping", headers=as_admin)
    run_jobs()
    request = receiver.requests[-1]
    assert verified(rotated.json["secret"], request) == verified(endpoint["secret"], request)
    with app.app_context(), unit_of_work() as session:
        session.execute(
            update(WebhookEndpoint).values(
                previous_secret_expires_at=utcnow() - timedelta(seconds=1)
            )
        )
    client.post(f"{API}/webhooks/{endpoint['id']}/ping", headers=as_admin)
    run_jobs()
    request = receiver.requests[-1]
    assert verified(rotated.json["secret"], request)["type"] == "ping"
    with pytest.raises(Exception, match="No matching signature"):
        verified(endpoint["secret"], request)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "http://localhost/hooks",  # a name that resolves to 127.0.0.1
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/",
        "http://[::1]/",
        "http://224.0.0.1/",
        "ftp://example.com/",
        "not a url",
        "http://name.invalid/",  # does not resolve
    ],
)
def test_private_and_unreachable_receivers_are_refused(client, as_admin, url):
    response = client.post(f"{API}/webhooks", headers=as_admin, json={"url": url, "events": ["*"]})
    assert response.status_code == 422 and "url" in response.json["errors"]


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://93.184.215.14/", "events": []},
        {"url": "http://93.184.215.14/", "events": ["order.exploded"]},
        {"url": "http://93.184.215.14/"},
        {"url": "http://93.184.215.14/", "events": ["*"], "is_active": "yes"},
    ],
)
def test_bad_endpoints_are_422(client, as_admin, body):
    assert client.post(f"{API}/webhooks", headers=as_admin, json=body).status_code == 422


def test_a_redirect_is_not_followed(
    client, app, as_customer, as_admin, receiver, run_jobs, private_allowed
):
    receiver.answers = [("redirect", "http://169.254.169.254/latest/meta-data")]
    endpoint = add_endpoint(client, as_admin, receiver.url)
    order(client, as_customer, make_product(app, stock=5, low_stock_threshold=0))
    tick(app, run_jobs)
    [delivery] = deliveries(client, as_admin, endpoint)
    assert delivery["response_status"] == 302 and delivery["status"] == "pending"
    assert "redirects are not followed" in delivery["last_error"]
    assert len(receiver.requests) == 1


def test_the_address_is_checked_again_when_sending(
    client, app, as_customer, as_admin, receiver, run_jobs, monkeypatch
):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE", True)
    endpoint = add_endpoint(client, as_admin, receiver.url)
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE", False)  # as if its name moved
    order(client, as_customer, make_product(app, stock=5, low_stock_threshold=0))
    tick(app, run_jobs)
    [delivery] = deliveries(client, as_admin, endpoint)
    assert delivery["last_error"].startswith("refused: 127.0.0.1 resolves to 127.0.0.1")
    assert receiver.requests == []


def test_endpoints_are_changed_and_deleted_with_their_deliveries(
    client, app, as_customer, as_admin, receiver, run_jobs, private_allowed, monkeypatch
):
    endpoint = add_endpoint(client, as_admin, receiver.url)
    order(client, as_customer, make_product(app, stock=5, low_stock_threshold=0))
    tick(app, run_jobs)
    url = f"{API}/webhooks/{endpoint['id']}"
    changed = client.patch(
        url, headers=as_admin, json={"events": ["payment.failed"], "description": "ERP"}
    )
    assert changed.status_code == 200 and changed.json["events"] == ["payment.failed"]
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE", False)
    assert client.patch(url, headers=as_admin, json={"url": "http://localhost/"}).status_code == 422
    assert client.delete(url, headers=as_admin).status_code == 204
    assert client.get(url, headers=as_admin).status_code == 404
    with app.app_context():
        assert db.session.scalars(select(WebhookDelivery)).all() == []
        actions = db.session.scalars(
            select(AuditLog.action).where(AuditLog.target_type == "webhook")
        ).all()
    assert sorted(actions) == ["webhook.created", "webhook.deleted", "webhook.updated"]


def test_deliveries_list_in_a_fixed_number_of_queries(
    client, app, as_customer, as_admin, receiver, run_jobs, private_allowed, count_queries
):
    endpoint = add_endpoint(client, as_admin, receiver.url)
    product = make_product(app, stock=50, low_stock_threshold=0)
    for _ in range(5):
        order(client, as_customer, product)
    tick(app, run_jobs)
    counts = []
    for size in (1, 5):
        with count_queries() as counter:
            response = client.get(
                f"{API}/webhooks/{endpoint['id']}/deliveries?page_size={size}", headers=as_admin
            )
        assert len(response.json["items"]) == size
        counts.append(counter.count)
    assert counts[0] == counts[1]
    body = json.loads(receiver.requests[0][1])
    assert set(body) == {"id", "type", "created_at", "data"}
