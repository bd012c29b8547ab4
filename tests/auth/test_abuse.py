"""What an attacker meets: no account enumeration through timing, no email bombing of one
address, and the per-address limit on anonymous writes, also behind a proxy."""

from sqlalchemy import func, select

from shop.db import db
from shop.outbox import OutboxMessage

API = "/api/v1"


def statements(count_queries, client, path, body):
    with count_queries() as counter:
        assert client.post(f"{API}{path}", json=body).status_code == 202
    return counter.count


def outbox_rows(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(OutboxMessage))


def test_reset_and_resend_do_the_same_work_for_known_and_unknown_addresses(
    client, app, customer, count_queries
):
    for path in ("/auth/password-reset", "/auth/verify-email/resend"):
        known = statements(count_queries, client, path, {"email": customer.email})
        unknown = statements(count_queries, client, path, {"email": "ghost@example.com"})
        assert known == unknown, path
    assert outbox_rows(app) == 4  # one job each, for both: the lookup happens in the job


def test_an_address_gets_at_most_three_codes_an_hour(client, app, customer, mailbox, run_jobs):
    for _ in range(5):
        assert (
            client.post(f"{API}/auth/password-reset", json={"email": customer.email}).status_code
            == 202
        )
    run_jobs()
    run_jobs()  # the emails the jobs queued
    assert len(mailbox.to(customer.email)) == 3


def test_registering_is_limited_per_client_address_also_behind_a_proxy(other_app):
    behind = other_app(TRUSTED_PROXIES=1, ANON_WRITE_LIMIT_PER_IP="3 per hour").test_client()

    def register(n, forwarded_for):
        return behind.post(
            f"{API}/auth/register",
            json={"email": f"probe{n}@example.com", "password": "probe-pass-123"},
            headers={"X-Forwarded-For": forwarded_for},
        )

    assert [register(n, "203.0.113.5").status_code for n in range(3)] == [201] * 3
    blocked = register(3, "203.0.113.5")
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert register(4, "198.51.100.7").status_code == 201  # another client behind the proxy
