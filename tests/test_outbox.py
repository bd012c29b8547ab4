"""The transactional outbox: side effects survive a Redis outage and run once."""

from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy import func, select, update

from shop import outbox
from shop.db import db, unit_of_work, utcnow
from shop.mail import queue_email
from shop.outbox import OutboxMessage
from shop.queues import DEFAULT_QUEUE, enqueue, redis_connection
from shop.schedule import RelayingScheduler

API = "/api/v1"


def outbox_rows(app):
    with app.app_context():
        return db.session.scalars(select(OutboxMessage)).all()


def test_message_is_written_with_the_change_and_handed_to_rq(client, app, mailbox, run_jobs):
    client.post(f"{API}/auth/register", json={"email": "a@example.com", "password": "pass-word-1"})
    [row] = outbox_rows(app)
    assert row.task == "shop.mail.send_email" and row.relayed_at is not None
    assert run_jobs() == 1
    assert len(mailbox.to("a@example.com")) == 1
    assert outbox_rows(app) == []  # handled messages are deleted


def test_rolled_back_work_queues_nothing(app, run_jobs, mailbox):
    with app.app_context():
        try:
            with unit_of_work():
                queue_email("b@example.com", "password_changed", user={"email": "b@example.com"})
                raise RuntimeError("abort")
        except RuntimeError:
            pass
    assert outbox_rows(app) == []
    assert run_jobs() == 0
    assert mailbox.messages == []


def test_redis_down_at_commit_loses_nothing(app, other_app, mailbox, run_jobs):
    # The web process cannot reach Redis when it commits...
    offline = other_app(REDIS_URL="redis://127.0.0.1:1/0")
    response = offline.test_client().post(
        f"{API}/auth/register", json={"email": "c@example.com", "password": "pass-word-1"}
    )
    assert response.status_code == 201
    [row] = outbox_rows(app)
    assert row.relayed_at is None
    # ...and the scheduler's relay sends it once Redis is back.
    with app.app_context():
        scheduler = RelayingScheduler(queue_name=DEFAULT_QUEUE, connection=redis_connection())
        scheduler.enqueue_jobs()
    assert run_jobs() == 1
    assert len(mailbox.to("c@example.com")) == 1


def test_a_doubly_relayed_message_runs_once(app, mailbox, run_jobs):
    with app.app_context():
        with unit_of_work():
            queue_email("d@example.com", "password_changed", user={"email": "d@example.com"})
        message_id = db.session.scalar(select(OutboxMessage.id))
        # Relay it again by hand under another job id, as a crashed relay might.
        enqueue(outbox.process, message_id, job_id="duplicate")
    assert run_jobs() == 2
    assert len(mailbox.to("d@example.com")) == 1


def test_failing_message_is_kept_with_its_error_for_a_retry(app, other_app):
    offline_mail = other_app(MAIL_PORT=1)
    with offline_mail.app_context(), unit_of_work():
        queue_email("e@example.com", "password_changed", user={"email": "e@example.com"})
    with app.app_context():
        message_id = db.session.scalar(select(OutboxMessage.id))
    with offline_mail.app_context():
        try:
            outbox.process(message_id)
        except OSError:
            pass
        else:
            raise AssertionError("sending to a closed port should fail")
    [row] = outbox_rows(app)
    assert row.attempts == 1 and "Connection refused" in (row.last_error or "")


def test_an_email_sent_again_after_its_job_failed_keeps_its_message_id(app, mailbox, monkeypatch):
    """The SMTP server took the message, then the job failed before it could delete it (the
    database went away): the retry sends the same message, one Message-ID for receivers."""
    with app.app_context(), unit_of_work():
        queue_email("g@example.com", "password_changed", user={"email": "g@example.com"})
    with app.app_context():
        message_id = db.session.scalar(select(OutboxMessage.id))
        real_import_string = outbox.import_string

        def sent_then_failed(task):
            def run(**payload):
                real_import_string(task)(**payload)
                raise ConnectionError("the database went away")

            return run

        monkeypatch.setattr(outbox, "import_string", sent_then_failed)
        with pytest.raises(ConnectionError):
            outbox.process(message_id)
        monkeypatch.setattr(outbox, "import_string", real_import_string)
        outbox.process(message_id)
    first, again = mailbox.to("g@example.com")
    assert first["Message-ID"] == again["Message-ID"] and first["Message-ID"].endswith("@shop>")
    assert outbox_rows(app) == []


def test_relay_skips_messages_already_handed_over(app):
    with app.app_context():
        with unit_of_work():
            queue_email("f@example.com", "password_changed", user={"email": "f@example.com"})
        assert outbox.relay() == 0
        queue = Queue(DEFAULT_QUEUE, connection=redis_connection())
        assert queue.count == 1
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_a_message_lost_between_commit_and_hand_over_is_relayed_later(
    app, mailbox, run_jobs, monkeypatch
):
    # The web process dies after its commit, before giving the message to RQ.
    monkeypatch.setattr(outbox, "_dispatch", lambda messages: None)
    with app.app_context():
        with unit_of_work():
            queue_email("g@example.com", "password_changed", user={"email": "g@example.com"})
        assert outbox.relay() == 0  # marked at insert: not yet presumed lost
        with unit_of_work() as session:
            stale = utcnow() - outbox.RELAY_AGAIN_AFTER - timedelta(seconds=1)
            session.execute(update(OutboxMessage).values(relayed_at=stale))
        assert outbox.relay() == 1
    assert run_jobs() == 1
    assert len(mailbox.to("g@example.com")) == 1


def test_a_lost_hand_over_is_relayed_within_seconds_and_a_queued_one_is_left_alone(
    app, mailbox, run_jobs, monkeypatch
):
    with app.app_context():
        with unit_of_work():  # handed over: its job is in the queue
            queue_email("q@example.com", "password_changed", user={"email": "q@example.com"})
        monkeypatch.setattr(outbox, "_dispatch", lambda messages: None)  # dies before handing
        with unit_of_work():
            queue_email("h@example.com", "password_changed", user={"email": "h@example.com"})
        with unit_of_work() as session:  # both marked a little longer ago than the lease
            leased = utcnow() - outbox.HAND_OVER_LEASE - timedelta(seconds=1)
            session.execute(update(OutboxMessage).values(relayed_at=leased))
        assert outbox.relay() == 1  # only the one whose job is missing
        assert outbox.relay() == 0
    assert run_jobs() == 2
    assert len(mailbox.to("h@example.com")) == len(mailbox.to("q@example.com")) == 1
