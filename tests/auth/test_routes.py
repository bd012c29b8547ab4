"""Auth API over HTTP: register, verify, login, refresh rotation, logout, profile, passwords."""

import re
import time
from datetime import timedelta

import pytest
from redis import Redis
from sqlalchemy import select, update

from shop.audit.models import AuditLog
from shop.auth.models import RefreshToken, UserToken
from shop.db import db, utcnow
from tests.conftest import text_of
from tests.factories import PASSWORD, bearer, make_user, tokens_for

API = "/api/v1"


def register(client, email="new@example.com", password="good-pass-123", **extra):
    return client.post(f"{API}/auth/register", json={"email": email, "password": password, **extra})


def login(client, email, password=PASSWORD):
    return client.post(f"{API}/auth/login", json={"email": email, "password": password})


def audit_actions(app):
    with app.app_context():
        return [a.action for a in db.session.scalars(select(AuditLog).order_by(AuditLog.id))]


def code_from(message):
    return re.search(r"\b(\d{6})\b", text_of(message)).group(1)


def reset_token_from(message):
    return re.search(
        r"/reset-password\?token=([A-Za-z0-9_-]{40,})\s*$", text_of(message), re.M
    ).group(1)


# --- register and verify --------------------------------------------------------------------


def test_register_creates_customer_and_emails_code(client, app, mailbox, run_jobs):
    response = register(client, first_name="Ann", phone="+1 650 253 0000")
    assert response.status_code == 201
    body = response.json
    assert body["email"] == "new@example.com" and body["role"] == "customer"
    assert body["phone"] == "+16502530000" and body["phone_verified"] is False  # E.164
    assert body["email_verified"] is False and body["first_name"] == "Ann"
    assert "password" not in body and "password_hash" not in body
    assert response.headers["Location"].endswith("/auth/me")
    assert audit_actions(app) == ["auth.register"]

    assert mailbox.to("new@example.com") == []  # sent by a worker, not the request
    assert run_jobs() == 1
    [message] = mailbox.to("new@example.com")
    code = code_from(message)

    assert (
        client.post(
            f"{API}/auth/verify-email", json={"email": "NEW@example.com", "code": code}
        ).status_code
        == 204
    )
    tokens = login(client, "new@example.com", "good-pass-123").json
    assert (
        client.get(f"{API}/auth/me", headers=bearer(tokens["access_token"])).json["email_verified"]
        is True
    )
    # Verifying again with the same code is idempotent; another code is still wrong.
    again = client.post(f"{API}/auth/verify-email", json={"email": "new@example.com", "code": code})
    assert again.status_code == 204
    wrong = "000000" if code != "000000" else "111111"
    other = client.post(
        f"{API}/auth/verify-email", json={"email": "new@example.com", "code": wrong}
    )
    assert other.status_code == 400
    assert audit_actions(app).count("auth.email_verified") == 1


def test_verification_code_wrong_then_locked_after_five_tries(client, mailbox, run_jobs):
    register(client)
    run_jobs()
    code = code_from(mailbox.to("new@example.com")[0])
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        r = client.post(
            f"{API}/auth/verify-email", json={"email": "new@example.com", "code": wrong}
        )
        assert r.status_code == 400
    r = client.post(f"{API}/auth/verify-email", json={"email": "new@example.com", "code": code})
    assert r.status_code == 400


def test_verification_code_expires(client, app, mailbox, run_jobs):
    register(client)
    run_jobs()
    code = code_from(mailbox.to("new@example.com")[0])
    with app.app_context():
        db.session.execute(update(UserToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    r = client.post(f"{API}/auth/verify-email", json={"email": "new@example.com", "code": code})
    assert r.status_code == 400


def test_resend_verification_always_202(client, mailbox, run_jobs):
    register(client)
    run_jobs()
    assert (
        client.post(
            f"{API}/auth/verify-email/resend", json={"email": "new@example.com"}
        ).status_code
        == 202
    )
    assert (
        client.post(
            f"{API}/auth/verify-email/resend", json={"email": "ghost@example.com"}
        ).status_code
        == 202
    )
    run_jobs()
    first, second = mailbox.to("new@example.com")
    assert mailbox.to("ghost@example.com") == []
    old, new = code_from(first), code_from(second)
    if old != new:  # the first code was replaced
        r = client.post(f"{API}/auth/verify-email", json={"email": "new@example.com", "code": old})
        assert r.status_code == 400
    r = client.post(f"{API}/auth/verify-email", json={"email": "new@example.com", "code": new})
    assert r.status_code == 204


def test_register_duplicate_email_any_case_is_409(client):
    assert register(client, email="Dup@Example.com").status_code == 201
    response = register(client, email="dup@example.COM")
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("password", "email"),
    [
        ("short1", "a@example.com"),
        ("1234567890", "a@example.com"),
        ("a@example.com", "a@example.com"),
        ("x" * 129, "a@example.com"),
    ],
)
def test_register_rejects_weak_passwords(client, password, email):
    response = register(client, email=email, password=password)
    assert response.status_code == 422
    assert "password" in response.json["errors"]


@pytest.mark.parametrize(
    "extra",
    [
        {"role": "admin"},
        {"id": 7},
        {"email_verified": True},
        {"phone": "call me maybe"},
        {"first_name": "x" * 101},
    ],
)
def test_register_rejects_read_only_unknown_and_invalid_fields(client, extra):
    response = register(client, **extra)
    assert response.status_code == 422
    assert set(extra) <= set(response.json["errors"])


def test_register_rejects_bad_email_and_wrong_types(client):
    assert register(client, email="not-an-email").status_code == 422
    assert client.post(f"{API}/auth/register", json=["a"]).status_code == 422
    assert client.post(f"{API}/auth/register", json={"email": 5, "password": 6}).status_code == 422


# --- login ----------------------------------------------------------------------------------


def test_login_returns_tokens_and_user(client, app, customer):
    response = login(client, customer.email)
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["access_token"] and body["refresh_token"]
    assert body["user"]["id"] == customer.id and body["user"]["role"] == "customer"
    me = client.get(f"{API}/auth/me", headers=bearer(body["access_token"]))
    assert me.json["email"] == customer.email and me.json["last_login_at"]
    assert "auth.login" in audit_actions(app)


def test_login_email_is_case_insensitive(client, customer):
    assert login(client, customer.email.upper()).status_code == 200


def test_login_same_401_for_unknown_email_and_wrong_password(client, app, customer):
    wrong = login(client, customer.email, "wrong-password-1")
    unknown = login(client, "nobody@example.com", "wrong-password-1")
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda body: {k: v for k, v in body.items() if k != "request_id"}  # noqa: E731
    assert strip(wrong.json) == strip(unknown.json)
    with app.app_context():
        failed = db.session.scalars(
            select(AuditLog).where(AuditLog.action == "auth.login_failed")
        ).all()
    assert {f.actor_email for f in failed} == {customer.email, "nobody@example.com"}
    assert all(f.actor_id is None for f in failed)


def test_login_unknown_email_costs_a_hash(client, customer):
    # An unknown email must not answer measurably faster than a wrong password.
    def best_of(email):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            login(client, email, "wrong-password-1")
            times.append(time.perf_counter() - started)
        return min(times)

    assert best_of("nobody@example.com") > 0.4 * best_of(customer.email)


def test_login_deactivated_user_is_401(client, app):
    user = make_user(app, active=False)
    assert login(client, user.email).status_code == 401


def test_repeated_failures_are_throttled_per_account(client, customer):
    for _ in range(5):
        assert login(client, customer.email, "wrong-password-1").status_code == 401
    blocked = login(client, customer.email)  # even the right password now waits
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert blocked.mimetype == "application/problem+json"
    other = make_user(client.application)
    assert login(client, other.email).status_code == 200  # other accounts are unaffected


def test_repeated_failures_are_throttled_per_ip(client, app):
    app.config["LOGIN_LIMIT_PER_IP"] = "3 per 15 minutes"
    try:
        for i in range(3):
            assert login(client, f"ghost{i}@example.com", "wrong-pass-1").status_code == 401
        assert login(client, "ghost9@example.com", "wrong-pass-1").status_code == 429
        other_ip = client.post(
            f"{API}/auth/login",
            json={"email": "ghost9@example.com", "password": "wrong-pass-1"},
            environ_base={"REMOTE_ADDR": "10.9.9.9"},
        )
        assert other_ip.status_code == 401
    finally:
        app.config["LOGIN_LIMIT_PER_IP"] = "30 per 15 minutes"


def test_successful_logins_are_not_throttled(client, customer):
    for _ in range(8):
        assert login(client, customer.email).status_code == 200


# --- refresh rotation -----------------------------------------------------------------------


def test_refresh_rotates_and_detects_reuse(client, customer):
    first = login(client, customer.email).json
    rotated = client.post(f"{API}/auth/refresh", headers=bearer(first["refresh_token"]))
    assert rotated.status_code == 200
    second = rotated.json
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get(f"{API}/auth/me", headers=bearer(second["access_token"])).status_code == 200

    reuse = client.post(f"{API}/auth/refresh", headers=bearer(first["refresh_token"]))
    assert reuse.status_code == 401
    # Reuse revoked the whole family: the newest refresh token is dead too.
    assert (
        client.post(f"{API}/auth/refresh", headers=bearer(second["refresh_token"])).status_code
        == 401
    )


def test_refresh_needs_a_refresh_token(client, customer):
    tokens = login(client, customer.email).json
    assert (
        client.post(f"{API}/auth/refresh", headers=bearer(tokens["access_token"])).status_code
        == 401
    )
    assert client.post(f"{API}/auth/refresh").status_code == 401
    assert client.post(f"{API}/auth/refresh", headers=bearer("junk")).status_code == 401


def test_other_sessions_survive_a_family_revocation(client, customer):
    phone = login(client, customer.email).json
    laptop = login(client, customer.email).json
    client.post(f"{API}/auth/refresh", headers=bearer(phone["refresh_token"]))
    client.post(f"{API}/auth/refresh", headers=bearer(phone["refresh_token"]))  # reuse
    assert (
        client.post(f"{API}/auth/refresh", headers=bearer(laptop["refresh_token"])).status_code
        == 200
    )


# --- logout ---------------------------------------------------------------------------------


def test_logout_revokes_both_tokens(client, app, customer):
    tokens = login(client, customer.email).json
    headers = bearer(tokens["access_token"])
    response = client.post(
        f"{API}/auth/logout", headers=headers, json={"refresh_token": tokens["refresh_token"]}
    )
    assert response.status_code == 204
    assert client.get(f"{API}/auth/me", headers=headers).status_code == 401
    assert (
        client.post(f"{API}/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code
        == 401
    )
    assert "auth.logout" in audit_actions(app)


def test_logout_without_body_revokes_access_token(client, customer):
    tokens = login(client, customer.email).json
    headers = bearer(tokens["access_token"])
    assert client.post(f"{API}/auth/logout", headers=headers).status_code == 204
    assert client.get(f"{API}/auth/me", headers=headers).status_code == 401
    assert (
        client.post(f"{API}/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code
        == 200
    )


def test_logout_revocation_is_in_the_database_not_redis(client, customer):
    tokens = login(client, customer.email).json
    headers = bearer(tokens["access_token"])
    client.post(f"{API}/auth/logout", headers=headers)
    Redis.from_url(client.application.config["REDIS_URL"]).flushdb()  # a Redis restart
    assert client.get(f"{API}/auth/me", headers=headers).status_code == 401


def test_logout_with_someone_elses_refresh_token_is_422(client, app, customer):
    other = make_user(app)
    mine = login(client, customer.email).json
    theirs = tokens_for(app, other)
    response = client.post(
        f"{API}/auth/logout",
        headers=bearer(mine["access_token"]),
        json={"refresh_token": theirs["refresh_token"]},
    )
    assert response.status_code == 422
    bad = client.post(
        f"{API}/auth/logout",
        headers=bearer(mine["access_token"]),
        json={"refresh_token": "garbage"},
    )
    assert bad.status_code == 422


def test_logout_needs_a_token(client):
    assert client.post(f"{API}/auth/logout").status_code == 401


# --- profile --------------------------------------------------------------------------------


def test_me_requires_a_valid_token(client, app, customer):
    assert client.get(f"{API}/auth/me").status_code == 401
    assert client.get(f"{API}/auth/me", headers=bearer("not.a.jwt")).status_code == 401
    assert client.get(f"{API}/auth/me", headers={"Authorization": "Basic abc"}).status_code == 401
    app.config["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(seconds=-1)
    try:
        expired = tokens_for(app, customer)["access_token"]
    finally:
        app.config["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(minutes=15)
    response = client.get(f"{API}/auth/me", headers=bearer(expired))
    assert response.status_code == 401 and response.mimetype == "application/problem+json"


def test_me_returns_profile_fields(client, customer, as_customer):
    body = client.get(f"{API}/auth/me", headers=as_customer).json
    assert set(body) >= {
        "id",
        "email",
        "first_name",
        "last_name",
        "phone",
        "role",
        "email_verified",
        "created_at",
    }
    assert body["created_at"].endswith("+00:00")


def test_patch_me_changes_names_and_phone_with_audit(client, app, customer, as_customer):
    response = client.patch(
        f"{API}/auth/me",
        headers=as_customer,
        json={"last_name": "Jones", "phone": "+44 20 7946 0000"},
    )
    assert response.status_code == 200
    assert response.json["last_name"] == "Jones" and response.json["first_name"] == "Cleo"
    with app.app_context():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "user.updated"))
    assert entry.actor_id == customer.id
    assert entry.changes["last_name"] == {"before": "", "after": "Jones"}
    assert "first_name" not in entry.changes


@pytest.mark.parametrize(
    "body",
    [{"email": "x@example.com"}, {"role": "admin"}, {"is_active": False}, {"phone": "nope!"}],
)
def test_patch_me_rejects_other_fields(client, as_customer, body):
    assert client.patch(f"{API}/auth/me", headers=as_customer, json=body).status_code == 422


def test_patch_me_needs_a_token(client):
    assert client.patch(f"{API}/auth/me", json={"first_name": "x"}).status_code == 401


# --- passwords ------------------------------------------------------------------------------


def test_change_password_invalidates_older_tokens(client, app, customer, mailbox, run_jobs):
    tokens = login(client, customer.email).json
    headers = bearer(tokens["access_token"])
    body = {"current_password": PASSWORD, "new_password": "brand-new-pass-1"}
    assert client.post(f"{API}/auth/change-password", headers=headers, json=body).status_code == 204
    assert client.get(f"{API}/auth/me", headers=headers).status_code == 401
    assert (
        client.post(f"{API}/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code
        == 401
    )
    assert login(client, customer.email).status_code == 401
    assert login(client, customer.email, "brand-new-pass-1").status_code == 200
    assert "auth.password_changed" in audit_actions(app)
    run_jobs()
    assert "password was changed" in mailbox.to(customer.email)[0]["Subject"]


def test_change_password_checks_current_and_policy(client, as_customer):
    wrong = client.post(
        f"{API}/auth/change-password",
        headers=as_customer,
        json={"current_password": "nope-nope-1", "new_password": "brand-new-1"},
    )
    assert wrong.status_code == 422 and "current_password" in wrong.json["errors"]
    weak = client.post(
        f"{API}/auth/change-password",
        headers=as_customer,
        json={"current_password": PASSWORD, "new_password": "12345678"},
    )
    assert weak.status_code == 422 and "new_password" in weak.json["errors"]
    assert (
        client.post(
            f"{API}/auth/change-password", json={"current_password": PASSWORD, "new_password": "x"}
        ).status_code
        == 401
    )


def test_password_reset_flow(client, app, customer, mailbox, run_jobs):
    old_tokens = login(client, customer.email).json
    assert (
        client.post(f"{API}/auth/password-reset", json={"email": customer.email}).status_code == 202
    )
    run_jobs()
    [message] = mailbox.to(customer.email)
    token = reset_token_from(message)

    weak = client.post(
        f"{API}/auth/password-reset/confirm", json={"token": token, "new_password": "123456789"}
    )
    assert weak.status_code == 422
    ok = client.post(
        f"{API}/auth/password-reset/confirm",
        json={"token": token, "new_password": "reset-pass-123"},
    )
    assert ok.status_code == 204
    assert login(client, customer.email, "reset-pass-123").status_code == 200
    assert (
        client.get(f"{API}/auth/me", headers=bearer(old_tokens["access_token"])).status_code == 401
    )
    reuse = client.post(
        f"{API}/auth/password-reset/confirm",
        json={"token": token, "new_password": "reset-pass-456"},
    )
    assert reuse.status_code == 400
    assert "auth.password_reset" in audit_actions(app)
    with app.app_context():
        stored = db.session.scalars(select(UserToken.digest)).all()
    assert token not in stored  # only a digest is kept


def test_password_reset_does_not_enumerate(client, mailbox, run_jobs):
    response = client.post(f"{API}/auth/password-reset", json={"email": "ghost@example.com"})
    assert response.status_code == 202
    run_jobs()
    assert mailbox.messages == []


def test_password_reset_token_expires(client, app, customer, mailbox, run_jobs):
    client.post(f"{API}/auth/password-reset", json={"email": customer.email})
    run_jobs()
    token = reset_token_from(mailbox.to(customer.email)[0])
    with app.app_context():
        db.session.execute(update(UserToken).values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
    response = client.post(
        f"{API}/auth/password-reset/confirm",
        json={"token": token, "new_password": "reset-pass-123"},
    )
    assert response.status_code == 400


def test_password_reset_confirm_rejects_garbage(client):
    response = client.post(
        f"{API}/auth/password-reset/confirm",
        json={"token": "nope", "new_password": "reset-pass-123"},
    )
    assert response.status_code == 400
    assert client.post(f"{API}/auth/password-reset/confirm", json={}).status_code == 422


def test_refresh_tokens_are_stored_for_rotation(client, app, customer):
    login(client, customer.email)
    with app.app_context():
        rows = db.session.scalars(select(RefreshToken)).all()
    assert len(rows) == 1 and rows[0].user_id == customer.id and rows[0].revoked_at is None
