"""The limits on phone codes (flask-limiter, as the login's): texts asked for per number
(whichever endpoint asks) and per client address; wrong codes tried per number and per
address, counted only when they fail; each a 429 with Retry-After."""

import logging

import pytest

from tests.auth.phone_helpers import API, NUMBER, OTHER_NUMBER, other_code, phone_user, sent_codes
from tests.factories import headers_for, make_user

NUMBERS = [f"+1650253000{n}" for n in range(10)]


@pytest.fixture(autouse=True)
def _texts_logged(caplog):
    caplog.set_level(logging.INFO, logger="shop.sms")


def limited(response):
    assert response.status_code == 429, response.json
    assert int(response.headers["Retry-After"]) > 0
    return True


def otp_request(client, number=NUMBER):
    return client.post(f"{API}/auth/otp/request", json={"phone": number})


def otp_login(client, code, number=NUMBER):
    return client.post(f"{API}/auth/otp/login", json={"phone": number, "code": code})


def test_three_texts_per_number_in_ten_minutes_whichever_endpoint_asks(client, app):
    assert otp_request(client).status_code == 202
    assert client.post(f"{API}/auth/password-reset", json={"phone": NUMBER}).status_code == 202
    assert otp_request(client, "+1 650 253 0000").status_code == 202  # the same number
    assert limited(otp_request(client))
    assert limited(client.post(f"{API}/auth/password-reset", json={"phone": NUMBER}))
    headers = headers_for(app, phone_user(app, verified=False))
    assert limited(client.post(f"{API}/auth/phone/verify-request", headers=headers))
    assert otp_request(client, OTHER_NUMBER).status_code == 202  # another number


def test_resets_by_email_are_not_counted_against_numbers(client, customer):
    for _ in range(5):
        assert otp_request(client).status_code in (202, 429)
    for _ in range(5):
        response = client.post(f"{API}/auth/password-reset", json={"email": customer.email})
        assert response.status_code == 202


def test_ten_texts_per_client_address_an_hour(client):
    for number in NUMBERS:
        assert otp_request(client, number).status_code == 202
    assert limited(otp_request(client, OTHER_NUMBER))
    assert limited(client.post(f"{API}/auth/password-reset", json={"phone": OTHER_NUMBER}))


def test_the_address_limit_holds_behind_a_proxy_per_client(other_app):
    behind = other_app(TRUSTED_PROXIES=1, PHONE_CODE_LIMIT_PER_IP="2 per hour").test_client()

    def ask(number, client_address):
        return behind.post(
            f"{API}/auth/otp/request",
            json={"phone": number},
            headers={"X-Forwarded-For": client_address},
        )

    assert [ask(n, "203.0.113.5").status_code for n in NUMBERS[:2]] == [202, 202]
    assert limited(ask(NUMBERS[2], "203.0.113.5"))
    assert ask(NUMBERS[3], "198.51.100.7").status_code == 202


def test_verify_requests_are_limited_per_number(client, app):
    headers = headers_for(app, phone_user(app, verified=False))
    for _ in range(3):
        assert client.post(f"{API}/auth/phone/verify-request", headers=headers).status_code == 202
    assert limited(client.post(f"{API}/auth/phone/verify-request", headers=headers))
    # Someone else's number is not.
    other = headers_for(app, phone_user(app, OTHER_NUMBER, verified=False))
    assert client.post(f"{API}/auth/phone/verify-request", headers=other).status_code == 202


def test_accounts_without_a_phone_do_not_share_a_bucket(client, app):
    for _ in range(4):
        headers = headers_for(app, make_user(app))
        assert client.post(f"{API}/auth/phone/verify-request", headers=headers).status_code == 409


def test_five_wrong_codes_per_number_then_429_and_right_ones_do_not_count(
    client, app, caplog, run_jobs
):
    phone_user(app)
    otp_request(client)
    [code] = sent_codes(caplog, run_jobs, NUMBER)
    for _ in range(4):
        assert otp_login(client, other_code(code)).status_code == 401
    assert otp_login(client, code).status_code == 200  # not counted
    otp_request(client)
    [_, code] = sent_codes(caplog, run_jobs, NUMBER)
    assert otp_login(client, other_code(code)).status_code == 401  # the fifth failure
    assert limited(otp_login(client, code))  # even the right code waits now
    assert limited(
        client.post(
            f"{API}/auth/password-reset/confirm",
            json={"phone": NUMBER, "code": code, "new_password": "brand-new-pass-1"},
        )
    )
    assert otp_login(client, "123456", number=OTHER_NUMBER).status_code == 401  # another number


def test_wrong_verify_codes_are_limited_per_number(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "PHONE_ATTEMPT_LIMIT_PER_NUMBER", "2 per 10 minutes")
    headers = headers_for(app, phone_user(app, verified=False))
    client.post(f"{API}/auth/phone/verify-request", headers=headers)
    for _ in range(2):
        response = client.post(f"{API}/auth/phone/verify", headers=headers, json={"code": "000000"})
        assert response.status_code == 400
    assert limited(
        client.post(f"{API}/auth/phone/verify", headers=headers, json={"code": "000000"})
    )


def test_wrong_codes_are_limited_per_client_address(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "PHONE_ATTEMPT_LIMIT_PER_IP", "3 per hour")
    for number in NUMBERS[:3]:
        assert otp_login(client, "123456", number=number).status_code == 401
    assert limited(otp_login(client, "123456", number=NUMBERS[3]))
    headers = headers_for(app, phone_user(app, verified=False))
    assert limited(client.post(f"{API}/auth/phone/verify", headers=headers, json={"code": "1" * 6}))


def test_reset_tokens_by_email_keep_their_own_limits(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "PHONE_ATTEMPT_LIMIT_PER_IP", "1 per hour")
    for _ in range(3):
        response = client.post(
            f"{API}/auth/password-reset/confirm",
            json={"token": "not-a-token", "new_password": "brand-new-pass-1"},
        )
        assert response.status_code == 400
