"""Phone codes on the embedded default (SQLite, no Redis): texts written to the log inline,
right after the commit; verifying a phone and logging in with a code."""

import logging
import re

import pytest

from tests.factories import headers_for, make_user

pytestmark = pytest.mark.embedded
API = "/api/v1"
NUMBER = "+16502530000"


def last_code(caplog):
    [*_, record] = [r for r in caplog.records if r.name == "shop.sms"]
    assert f"To: {NUMBER}" in record.getMessage()
    return re.search(r"\n\n(\d{6}) is your shop code\.$", record.getMessage()).group(1)


def test_verify_a_phone_and_log_in_with_a_code_without_redis(embedded_app, caplog):
    caplog.set_level(logging.INFO, logger="shop.sms")
    client = embedded_app.test_client()
    user = make_user(embedded_app)
    headers = headers_for(embedded_app, user)
    assert (
        client.patch(f"{API}/auth/me", headers=headers, json={"phone": "+1 650 253 0000"}).json[
            "phone"
        ]
        == NUMBER
    )
    assert client.post(f"{API}/auth/phone/verify-request", headers=headers).status_code == 202
    code = last_code(caplog)  # sent inline, after the commit
    assert (
        client.post(f"{API}/auth/phone/verify", headers=headers, json={"code": code}).status_code
        == 204
    )

    assert client.post(f"{API}/auth/otp/request", json={"phone": NUMBER}).status_code == 202
    login = client.post(f"{API}/auth/otp/login", json={"phone": NUMBER, "code": last_code(caplog)})
    assert login.status_code == 200 and login.json["user"]["id"] == user.id
