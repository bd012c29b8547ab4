"""Phone numbers and codes: E.164 or a 422, a new number unverified, verifying it with a
texted code (expiry, five wrong guesses, replay, a new code replacing the old), logging in
and resetting the password with one (verified phones only, two-factor's second step), and
who may call what."""

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from shop.audit.models import AuditLog
from shop.auth.models import LoginSession, PhoneCode, User
from shop.db import db, unit_of_work, utcnow
from shop.outbox import OutboxMessage
from tests.auth.phone_helpers import (
    API,
    NUMBER,
    OTHER_NUMBER,
    other_code,
    phone_user,
    sent_codes,
    texts_to,
)
from tests.auth.test_two_factor import code_at, enabled
from tests.factories import bearer, headers_for, make_user


@pytest.fixture(autouse=True)
def _texts_logged(caplog, app, monkeypatch):
    caplog.set_level(logging.INFO, logger="shop.sms")
    # Wrong guesses here test the codes, not the per-number limit (test_phone_limits does).
    monkeypatch.setitem(app.config, "PHONE_ATTEMPT_LIMIT_PER_NUMBER", "100 per hour")


def me(client, headers):
    return client.get(f"{API}/auth/me", headers=headers).json


def patch_phone(client, headers, number):
    return client.patch(f"{API}/auth/me", headers=headers, json={"phone": number})


def verify_request(client, headers):
    return client.post(f"{API}/auth/phone/verify-request", headers=headers)


def verify(client, headers, code):
    return client.post(f"{API}/auth/phone/verify", headers=headers, json={"code": code})


def otp_request(client, number=NUMBER):
    return client.post(f"{API}/auth/otp/request", json={"phone": number})


def otp_login(client, code, number=NUMBER):
    return client.post(f"{API}/auth/otp/login", json={"phone": number, "code": code})


def actions(app):
    with app.app_context():
        return [a.action for a in db.session.scalars(select(AuditLog).order_by(AuditLog.id))]


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+44 20 7946 0000", "+442079460000"),
        ("+1 (650) 253-0000", "+16502530000"),
        ("+33.6.12.34.56.78", "+33612345678"),
        ("+16502530000", "+16502530000"),
    ],
)
def test_a_number_is_stored_in_e164_and_unverified(client, as_customer, typed, stored):
    response = patch_phone(client, as_customer, typed)
    assert response.status_code == 200, response.json
    assert response.json["phone"] == stored and response.json["phone_verified"] is False
    assert me(client, as_customer)["phone"] == stored


INVALID = [
    "call me maybe",
    "+1 555 0100",  # too short for the NANP
    "+447700900123",  # a UK mobile range not in use
    "+999 1234 5678",  # no such country code
    "+",
    "+1" + "2" * 40,  # longer than 32 characters
    12025550123,
]


@pytest.mark.parametrize("number", INVALID)
def test_invalid_numbers_are_a_422_everywhere(client, as_customer, number):
    answers = [
        patch_phone(client, as_customer, number),
        client.post(
            f"{API}/auth/register",
            json={"email": "n@example.com", "password": "new-pass-123", "phone": number},
        ),
        client.post(f"{API}/auth/otp/request", json={"phone": number}),
        client.post(f"{API}/auth/otp/login", json={"phone": number, "code": "123456"}),
        client.post(f"{API}/auth/password-reset", json={"phone": number}),
        client.post(
            f"{API}/auth/password-reset/confirm",
            json={"phone": number, "code": "123456", "new_password": "new-pass-123"},
        ),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.json
        assert "phone" in answer.json["errors"]


def test_a_number_without_its_country_code_asks_for_the_international_form(client, as_customer):
    response = patch_phone(client, as_customer, "(650) 253-0000")
    assert response.status_code == 422
    assert response.json["errors"]["phone"] == [
        "Give the number in international form: + and the country code first."
    ]


def test_an_empty_phone_removes_it(client, app):
    user = phone_user(app)
    headers = headers_for(app, user)
    assert me(client, headers)["phone_verified"] is True
    response = patch_phone(client, headers, "")
    assert response.json["phone"] == "" and response.json["phone_verified"] is False


def test_a_new_number_is_unverified_and_the_same_one_stays_verified(client, app):
    user = phone_user(app)
    headers = headers_for(app, user)
    assert patch_phone(client, headers, "+1 650-253-0000").json["phone_verified"] is True
    assert client.patch(f"{API}/auth/me", headers=headers, json={"first_name": "Al"}).json[
        "phone_verified"
    ]
    assert patch_phone(client, headers, OTHER_NUMBER).json["phone_verified"] is False


# --- verifying ------------------------------------------------------------------------------


def test_verify_a_phone_with_the_texted_code(client, app, caplog, run_jobs):
    user = phone_user(app, verified=False)
    headers = headers_for(app, user)
    assert verify_request(client, headers).status_code == 202
    assert texts_to(caplog, NUMBER) == []  # texted by a worker, not the request
    [code] = sent_codes(caplog, run_jobs, NUMBER)
    assert texts_to(caplog, NUMBER) == [f"{code} is your shop code."]  # nothing else
    with app.app_context():
        stored = db.session.scalar(select(PhoneCode.digest))
    assert code not in stored and len(stored) == 64  # a keyed digest

    assert verify(client, headers, code).status_code == 204
    assert me(client, headers)["phone_verified"] is True
    assert "auth.phone_verified" in actions(app)
    assert verify(client, headers, code).status_code == 409  # verified already


def test_verifying_needs_a_valid_unverified_phone(client, app, as_customer):
    verified = headers_for(app, phone_user(app))
    legacy = headers_for(app, make_user(app, phone="555-0100"))  # saved before numbers were checked
    for headers in (as_customer, verified, legacy):  # no phone, verified already, legacy
        assert verify_request(client, headers).status_code == 409
        assert verify(client, headers, "123456").status_code == 409
    response = verify_request(client, legacy)
    assert "international form" in response.json["detail"]


def test_a_code_expires_after_ten_minutes(client, app, caplog, run_jobs):
    headers = headers_for(app, phone_user(app, verified=False))
    verify_request(client, headers)
    [code] = sent_codes(caplog, run_jobs, NUMBER)
    with app.app_context():
        expires_at = db.session.scalar(select(PhoneCode.expires_at))
    assert timedelta(minutes=9) < expires_at - utcnow() <= timedelta(minutes=10)
    with app.app_context(), unit_of_work() as session:
        session.execute(update(PhoneCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert verify(client, headers, code).status_code == 400
    assert me(client, headers)["phone_verified"] is False


def test_five_wrong_codes_spend_the_code(client, app, caplog, run_jobs):
    headers = headers_for(app, phone_user(app, verified=False))
    verify_request(client, headers)
    [code] = sent_codes(caplog, run_jobs, NUMBER)
    for _ in range(4):
        assert verify(client, headers, other_code(code)).status_code == 400
    with app.app_context():
        assert db.session.scalar(select(PhoneCode.attempts)) == 4
    assert verify(client, headers, other_code(code)).status_code == 400  # the fifth
    assert verify(client, headers, code).status_code == 400  # spent
    assert me(client, headers)["phone_verified"] is False


def test_a_new_code_replaces_the_old_one(client, app, caplog, run_jobs):
    headers = headers_for(app, phone_user(app, verified=False))
    verify_request(client, headers)
    verify_request(client, headers)
    first, second = sent_codes(caplog, run_jobs, NUMBER)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PhoneCode)) == 1
    if first != second:  # one chance in a million that they are the same
        assert verify(client, headers, first).status_code == 400
    assert verify(client, headers, second).status_code == 204


def test_a_code_sent_to_the_previous_number_does_not_verify_the_new_one(
    client, app, caplog, run_jobs
):
    headers = headers_for(app, phone_user(app, verified=False))
    verify_request(client, headers)
    [code] = sent_codes(caplog, run_jobs, NUMBER)
    patch_phone(client, headers, OTHER_NUMBER)
    assert verify(client, headers, code).status_code == 400


def test_verifying_a_number_takes_it_from_the_account_that_had_it(client, app, caplog, run_jobs):
    before = phone_user(app)  # the number was theirs once
    after = phone_user(app, verified=False)
    headers = headers_for(app, after)
    verify_request(client, headers)
    [code] = sent_codes(caplog, run_jobs, NUMBER)
    assert verify(client, headers, code).status_code == 204
    assert me(client, headers_for(app, before))["phone_verified"] is False
    otp_request(client)
    [_, login_code] = sent_codes(caplog, run_jobs, NUMBER)
    assert otp_login(client, login_code).json["user"]["id"] == after.id


# --- logging in -----------------------------------------------------------------------------


def test_log_in_with_a_texted_code(client, app, caplog, run_jobs):
    user = phone_user(app)
    assert otp_request(client, "+1 650 253 0000").status_code == 202
    [code] = sent_codes(caplog, run_jobs, NUMBER)
    response = otp_login(client, code)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["token_type"] == "Bearer" and body["user"]["id"] == user.id
    assert me(client, bearer(body["access_token"]))["id"] == user.id
    assert (
        client.post(f"{API}/auth/refresh", headers=bearer(body["refresh_token"])).status_code == 200
    )
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LoginSession)) == 1
        assert db.session.get(User, user.id).last_login_at is not None
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "auth.login"))
    assert entry.actor_id == user.id and entry.changes == {"by": "phone"}
    assert otp_login(client, code).status_code == 401  # replayed


def test_a_wrong_code_or_number_is_a_401_and_recorded(client, app, caplog, run_jobs):
    phone_user(app)
    otp_request(client)
    [code] = sent_codes(caplog, run_jobs, NUMBER)
    assert otp_login(client, other_code(code)).status_code == 401
    assert otp_login(client, code, number=OTHER_NUMBER).status_code == 401
    assert actions(app).count("auth.login_failed") == 2
    assert otp_login(client, code).status_code == 200


@pytest.mark.parametrize(
    "owner",
    [
        lambda app: phone_user(app, verified=False),
        lambda app: phone_user(app, active=False),
        lambda app: None,  # nobody's
    ],
    ids=["unverified", "deactivated", "unknown"],
)
def test_only_an_active_accounts_verified_phone_gets_a_code(client, app, caplog, run_jobs, owner):
    owner(app)
    assert otp_request(client).status_code == 202
    assert sent_codes(caplog, run_jobs, NUMBER) == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PhoneCode)) == 0
    assert otp_login(client, "123456").status_code == 401


def test_a_request_does_the_same_work_for_any_number(client, app, count_queries):
    phone_user(app)
    with count_queries() as known:
        assert otp_request(client).status_code == 202
    with count_queries() as unknown:
        assert otp_request(client, OTHER_NUMBER).status_code == 202
    assert known.count == unknown.count
    with app.app_context():  # the lookup is the job's
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 2


def test_a_login_code_is_for_logging_in_only(client, app, caplog, run_jobs):
    headers = headers_for(app, phone_user(app))
    otp_request(client)
    [code] = sent_codes(caplog, run_jobs, NUMBER)
    patch_phone(client, headers, OTHER_NUMBER)
    patch_phone(client, headers, NUMBER)  # unverified now: no login
    assert verify(client, headers, code).status_code == 400
    assert otp_login(client, code).status_code == 401


def test_with_two_factor_on_a_phone_login_asks_for_the_second_step(client, app, caplog, run_jobs):
    user, _, secret, _ = enabled(client, app)
    with app.app_context(), unit_of_work() as session:
        session.execute(
            update(User).where(User.id == user.id).values(phone=NUMBER, phone_verified_at=utcnow())
        )
    otp_request(client)
    [code] = sent_codes(caplog, run_jobs, NUMBER)
    first = otp_login(client, code)
    assert first.status_code == 200
    assert first.json["mfa_required"] is True and "access_token" not in first.json
    done = client.post(
        f"{API}/auth/login/2fa",
        json={"mfa_token": first.json["mfa_token"], "code": code_at(secret)},
    )
    assert done.status_code == 200 and done.json["user"]["id"] == user.id


# --- password reset -------------------------------------------------------------------------


def reset(client, code, password="brand-new-pass-1", number=NUMBER):
    return client.post(
        f"{API}/auth/password-reset/confirm",
        json={"phone": number, "code": code, "new_password": password},
    )


def test_reset_the_password_with_a_texted_code(client, app, caplog, run_jobs, mailbox):
    user = phone_user(app)
    old = headers_for(app, user)
    assert client.post(f"{API}/auth/password-reset", json={"phone": NUMBER}).status_code == 202
    [code] = sent_codes(caplog, run_jobs, NUMBER)
    assert reset(client, code, password="123456789").status_code == 422  # not spent by it
    assert reset(client, code).status_code == 204
    assert client.get(f"{API}/auth/me", headers=old).status_code == 401  # tokens revoked
    login = client.post(
        f"{API}/auth/login", json={"email": user.email, "password": "brand-new-pass-1"}
    )
    assert login.status_code == 200
    assert reset(client, code, password="another-pass-2").status_code == 400  # used once
    run_jobs()
    [told] = mailbox.to(user.email)
    assert "password was changed" in told["Subject"]
    assert {"auth.password_reset_requested", "auth.password_reset"} <= set(actions(app))


def test_a_reset_code_does_not_log_in_nor_a_login_code_reset(client, app, caplog, run_jobs):
    phone_user(app)
    client.post(f"{API}/auth/password-reset", json={"phone": NUMBER})
    [reset_code] = sent_codes(caplog, run_jobs, NUMBER)
    assert otp_login(client, reset_code).status_code == 401
    otp_request(client)
    [_, login_code] = sent_codes(caplog, run_jobs, NUMBER)
    if login_code != reset_code:
        assert reset(client, login_code).status_code == 400
    assert reset(client, reset_code).status_code == 204


def test_no_reset_code_for_an_unverified_phone(client, app, caplog, run_jobs):
    phone_user(app, verified=False)
    assert client.post(f"{API}/auth/password-reset", json={"phone": NUMBER}).status_code == 202
    assert sent_codes(caplog, run_jobs, NUMBER) == []
    assert reset(client, "123456").status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "a@example.com", "phone": NUMBER},
        {"phone": NUMBER, "extra": 1},
    ],
)
def test_a_reset_asks_for_an_email_or_a_phone(client, body):
    assert client.post(f"{API}/auth/password-reset", json=body).status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"new_password": "brand-new-pass-1"},
        {"phone": NUMBER, "new_password": "brand-new-pass-1"},
        {"code": "123456", "new_password": "brand-new-pass-1"},
        {"token": "t", "phone": NUMBER, "code": "123456", "new_password": "brand-new-pass-1"},
        {"phone": NUMBER, "code": "12345", "new_password": "brand-new-pass-1"},
        {"phone": NUMBER, "code": "123456"},
    ],
)
def test_a_reset_confirmation_takes_a_token_or_a_phone_and_code(client, body):
    assert client.post(f"{API}/auth/password-reset/confirm", json=body).status_code == 422


# --- who may call what ----------------------------------------------------------------------


def test_verifying_needs_a_token(client):
    assert client.post(f"{API}/auth/phone/verify-request").status_code == 401
    assert client.post(f"{API}/auth/phone/verify", json={"code": "123456"}).status_code == 401


@pytest.mark.parametrize("role", ["customer", "staff", "admin"])
def test_every_role_verifies_its_own_phone(client, app, caplog, run_jobs, role):
    headers = headers_for(app, phone_user(app, verified=False, role=role))
    assert verify_request(client, headers).status_code == 202
    [code] = sent_codes(caplog, run_jobs, NUMBER)
    assert verify(client, headers, code).status_code == 204


def test_anyone_asks_for_and_uses_a_login_code(client, app, caplog, run_jobs, as_admin):
    user = phone_user(app)
    assert (
        client.post(f"{API}/auth/otp/request", json={"phone": NUMBER}, headers=as_admin).status_code
        == 202
    )
    [code] = sent_codes(caplog, run_jobs, NUMBER)
    response = client.post(
        f"{API}/auth/otp/login", json={"phone": NUMBER, "code": code}, headers=as_admin
    )
    assert response.status_code == 200 and response.json["user"]["id"] == user.id


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/auth/phone/verify", {"code": "12345a"}),
        ("/auth/phone/verify", {}),
        ("/auth/phone/verify", {"code": "123456", "phone": NUMBER}),
        ("/auth/otp/request", {}),
        ("/auth/otp/login", {"phone": NUMBER}),
        ("/auth/otp/login", {"phone": NUMBER, "code": "١٢٣٤٥٦"}),  # not ASCII digits
    ],
)
def test_bad_bodies_are_a_422(client, app, path, body):
    headers = headers_for(app, phone_user(app, verified=False))
    assert client.post(f"{API}{path}", json=body, headers=headers).status_code == 422


def test_a_body_that_is_not_json_is_a_400(client):
    response = client.post(
        f"{API}/auth/otp/request", data="{", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


# --- at once --------------------------------------------------------------------------------


def test_a_code_logs_in_once_when_sent_many_times_at_once(client, app, caplog, run_jobs):
    phone_user(app)
    otp_request(client)
    [code] = sent_codes(caplog, run_jobs, NUMBER)

    def attempt(_):
        with app.test_client() as own:
            return otp_login(own, code).status_code

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(attempt, range(4))) == [200, 401, 401, 401]


def test_wrong_guesses_at_once_are_all_counted(client, app, caplog, run_jobs):
    phone_user(app)
    otp_request(client)
    [code] = sent_codes(caplog, run_jobs, NUMBER)

    def guess(_):
        with app.test_client() as own:
            return otp_login(own, other_code(code)).status_code

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(guess, range(8))) == {401}
    assert otp_login(client, code).status_code == 401  # spent by its fifth wrong guess
