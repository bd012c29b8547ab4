"""Refunds through Stripe: written with their cause (a payment for a cancelled order, a
Stripe-paid order cancelled), sent by a worker once (its row's idempotency key; retried with
the queue's backoff after a 500 or a timeout), refused ones failed and told, confirmed by
charge.refunded (and refunds made at Stripe recorded)."""

from decimal import Decimal

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from sqlalchemy import select

from shop.db import db, unit_of_work, utcnow
from shop.errors import Conflict
from shop.orders.models import Order, ProviderRefund, ProviderRefundReason
from shop.orders.provider_refunds import refund_provider_payments
from shop.outbox import OutboxMessage
from shop.queues import DEFAULT_QUEUE
from tests.conftest import TEST_REDIS_URL, text_of
from tests.payments.stripe_fake import API, TIMEOUT, charge_refunded, intent_event, post_event

SUCCEEDED = "payment_intent.succeeded"


def refunds_of(app, order):
    with app.app_context():
        return [
            (r.amount, r.reason, r.status, r.provider_refund_id)
            for r in db.session.scalars(
                select(ProviderRefund)
                .where(ProviderRefund.order_id == order["id"])
                .order_by(ProviderRefund.id)
            )
        ]


def order_of(client, headers, order):
    return client.get(f"{API}/orders/{order['id']}", headers=headers).json


def needs_refund(client, headers):
    return [o["id"] for o in client.get(f"{API}/orders?needs_refund=true", headers=headers).json[
        "items"]]  # fmt: skip


def test_a_payment_for_a_cancelled_order_goes_back_to_stripe(
    stripe_app, stripe_client, fake_stripe, order, intent, as_customer, as_staff, mailbox,
    run_stripe_jobs,
):  # fmt: skip
    assert stripe_client.post(f"{API}/orders/{order['id']}/cancel", headers=as_customer).json[
        "status"] == "cancelled"  # fmt: skip
    assert refunds_of(stripe_app, order) == []  # nothing was paid
    assert post_event(stripe_client, intent_event(SUCCEEDED, intent)).json["result"] == "recorded"
    kept = order_of(stripe_client, as_staff, order)
    assert kept["status"] == "cancelled" and kept["amount_paid"] == "59.97"
    assert kept["refund_due"] == "59.97" and needs_refund(stripe_client, as_staff) == [order["id"]]
    assert refunds_of(stripe_app, order) == [
        (Decimal("59.97"), "paid_after_cancellation", "pending", None)
    ]
    run_stripe_jobs()
    [sent] = fake_stripe.made("/v1/refunds")
    assert sent["params"]["payment_intent"] == intent["id"] and sent["params"]["amount"] == "5997"
    assert sent["params"]["metadata[order_number]"] == order["number"]
    [(_, _, status, refund_id)] = refunds_of(stripe_app, order)
    assert status == "sent" and refund_id in fake_stripe.refunds
    [alert] = [m for m in mailbox.to("ops@example.com") if "Refund due" in m["Subject"]]
    assert "being refunded through Stripe" in " ".join(text_of(alert).split())
    # Stripe confirms it: the order owes nothing any more, and saying so again changes nothing.
    confirmed = charge_refunded(intent, fake_stripe.refunded(intent["id"]))
    assert post_event(stripe_client, confirmed).json["result"] == "recorded"
    assert refunds_of(stripe_app, order)[0][2] == "succeeded"
    assert order_of(stripe_client, as_staff, order)["refund_due"] == "0.00"
    assert needs_refund(stripe_client, as_staff) == []
    assert post_event(stripe_client, confirmed).json["result"] == "duplicate"
    run_stripe_jobs()
    assert len(fake_stripe.made("/v1/refunds")) == 1


def test_cancelling_an_order_paid_through_stripe_refunds_it(
    stripe_app, stripe_client, fake_stripe, order, intent, as_staff, run_stripe_jobs
):
    post_event(stripe_client, intent_event(SUCCEEDED, intent))
    cancelled = stripe_client.post(f"{API}/orders/{order['id']}/cancel", headers=as_staff)
    assert cancelled.status_code == 200 and cancelled.json["refund_due"] == "59.97"
    assert refunds_of(stripe_app, order) == [(Decimal("59.97"), "order_cancelled", "pending", None)]
    run_stripe_jobs()
    [sent] = fake_stripe.made("/v1/refunds")
    assert sent["params"]["amount"] == "5997"


def test_a_manually_paid_order_cancelled_sends_nothing_to_stripe(
    stripe_app, stripe_client, fake_stripe, order, as_staff, run_stripe_jobs
):
    stripe_client.post(
        f"{API}/orders/{order['id']}/payments",
        headers=as_staff,
        json={"amount": "59.97", "method": "cash"},
    )
    stripe_client.post(f"{API}/orders/{order['id']}/cancel", headers=as_staff)
    run_stripe_jobs()
    assert refunds_of(stripe_app, order) == [] and fake_stripe.made("/v1/refunds") == []


def scheduled_retry(stripe_app):
    """The one refund job waiting for its retry, and in how many seconds it is due."""
    connection = Redis.from_url(TEST_REDIS_URL)
    registry = Queue(DEFAULT_QUEUE, connection=connection).scheduled_job_registry
    [job_id] = registry.get_job_ids()
    due = registry.get_scheduled_time(job_id)
    return Job.fetch(job_id, connection=connection), (due - utcnow()).total_seconds()


def retry_now(job):
    """What RQ's scheduler does once the backoff is over."""
    queue = Queue(DEFAULT_QUEUE, connection=job.connection)
    queue.scheduled_job_registry.remove(job)
    queue.enqueue_job(job)


def test_a_refund_is_retried_after_a_500_and_a_timeout_and_made_once(
    stripe_app, stripe_client, fake_stripe, order, intent, as_customer, run_stripe_jobs
):
    stripe_client.post(f"{API}/orders/{order['id']}/cancel", headers=as_customer)
    post_event(stripe_client, intent_event(SUCCEEDED, intent))
    # A 500; then Stripe makes the refund but answers too late (shop gave up: a timeout).
    fake_stripe.answers = [500, ("slow", 3 * TIMEOUT)]
    intervals = stripe_app.config["JOB_RETRY_INTERVALS"]
    waits = []
    for attempt in (1, 2):
        run_stripe_jobs()
        assert len(fake_stripe.made("/v1/refunds")) == attempt
        assert refunds_of(stripe_app, order)[0][2] == "pending"
        job, wait = scheduled_retry(stripe_app)
        waits.append(wait)
        retry_now(job)
    # The queue's backoff, growing: JOB_RETRY_INTERVALS (10 s, then 60 s).
    assert all(0 < wait <= interval for wait, interval in zip(waits, intervals, strict=False))
    assert waits[1] > intervals[0], waits
    assert len(fake_stripe.refunds) == 1  # the timed-out attempt's
    run_stripe_jobs()
    attempts = fake_stripe.made("/v1/refunds")
    assert len(attempts) == 3 and len({a["key"] for a in attempts}) == 1
    assert len(fake_stripe.refunds) == 1  # the third got the second's refund back
    [(_, _, status, refund_id)] = refunds_of(stripe_app, order)
    assert status == "sent" and refund_id == next(iter(fake_stripe.refunds))
    with stripe_app.app_context():
        assert db.session.scalars(select(OutboxMessage)).all() == []


def test_a_refund_stripe_refuses_is_failed_and_the_admins_told(
    stripe_app, stripe_client, fake_stripe, order, intent, as_customer, as_staff, mailbox,
    run_stripe_jobs,
):  # fmt: skip
    stripe_client.post(f"{API}/orders/{order['id']}/cancel", headers=as_customer)
    post_event(stripe_client, intent_event(SUCCEEDED, intent))
    fake_stripe.answers = [400]
    run_stripe_jobs()
    [(_, _, status, refund_id)] = refunds_of(stripe_app, order)
    assert status == "failed" and refund_id is None
    assert len(fake_stripe.made("/v1/refunds")) == 1  # not tried again
    queue = Queue(DEFAULT_QUEUE, connection=Redis.from_url(TEST_REDIS_URL))
    assert queue.scheduled_job_registry.count == 0
    assert order_of(stripe_client, as_staff, order)["refund_due"] == "59.97"  # still owed
    [alert] = [m for m in mailbox.to("ops@example.com") if "Refund failed" in m["Subject"]]
    assert order["number"] in alert["Subject"]


def test_a_refund_made_at_stripe_is_recorded(
    stripe_app, stripe_client, order, intent, as_staff, run_stripe_jobs
):
    post_event(stripe_client, intent_event(SUCCEEDED, intent))
    post_event(stripe_client, charge_refunded(intent, 1000))
    assert refunds_of(stripe_app, order) == [(Decimal("10.00"), "at_provider", "succeeded", None)]
    post_event(stripe_client, charge_refunded(intent, 1500))  # a second, later, at Stripe
    assert [r[0] for r in refunds_of(stripe_app, order)] == [Decimal("10.00"), Decimal("5.00")]
    paid = order_of(stripe_client, as_staff, order)
    assert paid["status"] == "paid" and paid["refund_due"] == "0.00"
    # Cancelled now, the rest goes back: 59.97 less the 15.00 Stripe refunded already.
    stripe_client.post(f"{API}/orders/{order['id']}/cancel", headers=as_staff)
    assert refunds_of(stripe_app, order)[-1] == (
        Decimal("44.97"),
        "order_cancelled",
        "pending",
        None,
    )


def test_a_mismatched_payment_goes_back_when_its_order_is_cancelled(
    stripe_app, stripe_client, fake_stripe, order, intent, as_customer, run_stripe_jobs
):
    post_event(stripe_client, intent_event(SUCCEEDED, intent, amount=5000))
    assert refunds_of(stripe_app, order) == []  # a person decides
    stripe_client.post(f"{API}/orders/{order['id']}/cancel", headers=as_customer)
    run_stripe_jobs()
    [sent] = fake_stripe.made("/v1/refunds")
    assert sent["params"]["amount"] == "5000"


def test_the_refund_function_takes_at_most_what_is_left(
    stripe_app, stripe_client, fake_stripe, order, intent, run_stripe_jobs
):
    """What the refunds of a later issue call: an amount of a provider-paid order."""
    post_event(stripe_client, intent_event(SUCCEEDED, intent))
    with stripe_app.app_context():
        with unit_of_work() as session:
            locked = session.get(Order, order["id"], with_for_update=True)
            [refund] = refund_provider_payments(
                None, locked, Decimal("20.00"), reason=ProviderRefundReason.REQUESTED
            )
            assert refund.status == "pending" and locked.refund_due == Decimal("20.00")
        with pytest.raises(Conflict, match=r"39\.97"), unit_of_work() as session:
            locked = session.get(Order, order["id"], with_for_update=True)
            refund_provider_payments(
                None, locked, Decimal("40.00"), reason=ProviderRefundReason.REQUESTED
            )
    run_stripe_jobs()
    [sent] = fake_stripe.made("/v1/refunds")
    assert sent["params"]["amount"] == "2000"
    post_event(stripe_client, charge_refunded(intent, 2000))
    assert refunds_of(stripe_app, order) == [
        (Decimal("20.00"), "requested", "succeeded", next(iter(fake_stripe.refunds)))
    ]
