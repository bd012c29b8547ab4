"""POST /orders/{id}/refunds on an order paid through Stripe: the money goes back through
Stripe (a worker sends it), the refund answers its provider_status as it moves, the amount
counts in refund_due until Stripe confirms it, and refunding everything makes it refunded."""

from decimal import Decimal

from shop.db import db
from shop.orders.billing_models import Refund
from tests.payments.stripe_fake import API, charge_refunded, intent_event, post_event

SUCCEEDED = "payment_intent.succeeded"


def test_a_refund_of_a_stripe_paid_order_goes_through_stripe(
    stripe_app, stripe_client, fake_stripe, order, intent, as_customer, as_staff, run_stripe_jobs
):
    assert post_event(stripe_client, intent_event(SUCCEEDED, intent)).json["result"] == "recorded"
    paid = stripe_client.get(f"{API}/orders/{order['id']}", headers=as_staff).json
    assert paid["status"] == "paid" and paid["invoice_number"].startswith("INV-")
    url = f"{API}/orders/{order['id']}/refunds"
    made = stripe_client.post(
        url, headers=as_staff, json={"amount": "19.99", "reason": "one arrived broken"}
    )
    assert made.status_code == 201, made.json
    assert made.json["provider_status"] == "pending"
    after = stripe_client.get(f"{API}/orders/{order['id']}", headers=as_staff).json
    assert (after["amount_refunded"], after["refund_due"]) == ("19.99", "19.99")
    run_stripe_jobs()
    [sent] = fake_stripe.made("/v1/refunds")
    assert sent["params"]["amount"] == "1999" and sent["params"]["payment_intent"] == intent["id"]
    assert stripe_client.get(url, headers=as_customer).json["items"][0]["provider_status"] == (
        "sent"
    )
    confirmed = charge_refunded(intent, fake_stripe.refunded(intent["id"]))
    assert post_event(stripe_client, confirmed).json["result"] == "recorded"
    [listed] = stripe_client.get(url, headers=as_customer).json["items"]
    assert listed["provider_status"] == "succeeded"
    settled = stripe_client.get(f"{API}/orders/{order['id']}", headers=as_staff).json
    assert settled["refund_due"] == "0.00"
    # More than Stripe holds is a 409; the rest makes the order refunded.
    too_much = stripe_client.post(url, headers=as_staff, json={"amount": "40.00", "reason": "x"})
    assert too_much.status_code == 409
    rest = stripe_client.post(url, headers=as_staff, json={"amount": "39.98", "reason": "all"})
    assert rest.status_code == 201 and rest.json["provider_status"] == "pending"
    done = stripe_client.get(f"{API}/orders/{order['id']}", headers=as_staff).json
    assert (done["status"], done["amount_refunded"]) == ("refunded", "59.97")
    with stripe_app.app_context():
        refund = db.session.get(Refund, rest.json["id"])
        assert [(r.amount, r.reason) for r in refund.provider_refunds] == [
            (Decimal("39.98"), "requested")
        ]


def test_a_cancelled_stripe_order_has_nothing_left_to_refund_by_hand(
    stripe_client, order, intent, as_customer, as_staff
):
    assert post_event(stripe_client, intent_event(SUCCEEDED, intent)).json["result"] == "recorded"
    cancelled = stripe_client.post(f"{API}/orders/{order['id']}/cancel", headers=as_staff)
    assert cancelled.json["refund_due"] == "59.97"  # the cancellation sends it all back
    again = stripe_client.post(
        f"{API}/orders/{order['id']}/refunds",
        headers=as_staff,
        json={"amount": "1.00", "reason": "twice"},
    )
    assert again.status_code == 409
