"""Two-factor (TOTP, RFC 6238): setup, enabling with a first code, the login's second step
(one step of drift, each code once, recovery codes once, wrong codes spending the step),
the QR code, turning it off."""

import io
import time
from concurrent.futures import ThreadPoolExecutor

import pyotp
from PIL import Image

from shop.auth.two_factor import STEP
from tests.factories import PASSWORD, bearer, make_user, tokens_for

API = "/api/v1"


def code_at(secret, offset=0):
    """The code of the step now + `offset` steps."""
    return pyotp.TOTP(secret, interval=STEP).generate_otp(int(time.time()) // STEP + offset)


def login(client, email, password=PASSWORD):
    return client.post(f"{API}/auth/login", json={"email": email, "password": password})


def second_step(client, mfa_token, **body):
    return client.post(f"{API}/auth/login/2fa", json={"mfa_token": mfa_token, **body})


def enabled(client, app):
    """A user with two-factor on: (user, their headers, the secret, the recovery codes)."""
    user = make_user(app)
    headers = bearer(tokens_for(app, user)["access_token"])
    setup = client.post(f"{API}/auth/2fa/setup", headers=headers)
    assert setup.status_code == 200
    secret = setup.json["secret"]
    assert setup.json["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={secret}" in setup.json["otpauth_uri"]
    on = client.post(f"{API}/auth/2fa/enable", headers=headers, json={"code": code_at(secret, -1)})
    assert on.status_code == 200, on.json
    codes = on.json["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    return user, headers, secret, codes


def test_setup_enable_and_a_login_in_two_steps(client, app):
    user, headers, secret, _ = enabled(client, app)
    assert client.get(f"{API}/auth/me", headers=headers).json["two_factor_enabled"] is True
    first = login(client, user.email)
    assert first.status_code == 200
    assert first.json["mfa_required"] is True and "access_token" not in first.json
    # The mfa token grants nothing.
    assert client.get(f"{API}/auth/me", headers=bearer(first.json["mfa_token"])).status_code == 401
    done = second_step(client, first.json["mfa_token"], code=code_at(secret))
    assert done.status_code == 200, done.json
    assert done.json["user"]["id"] == user.id
    assert (
        client.get(f"{API}/auth/me", headers=bearer(done.json["access_token"])).status_code == 200
    )
    # The step is spent.
    assert second_step(client, first.json["mfa_token"], code=code_at(secret, 1)).status_code == 401


def test_one_step_of_drift_each_code_once_and_never_an_older_one(client, app):
    user, _, secret, _ = enabled(client, app)  # enabled with the previous step's code

    def attempt(code):
        token = login(client, user.email).json["mfa_token"]
        return second_step(client, token, code=code).status_code

    assert attempt(code_at(secret, -1)) == 401  # accepted once already (at enable)
    assert attempt(code_at(secret, -2)) == 401  # out of the window
    assert attempt(code_at(secret, 2)) == 401
    assert attempt(code_at(secret)) == 200
    assert attempt(code_at(secret)) == 401  # replayed
    assert attempt(code_at(secret, 1)) == 200  # the next step: drift
    assert attempt(code_at(secret)) == 401  # older than the last accepted


def test_the_same_code_twice_at_once_logs_in_once(client, app):
    user, _, secret, _ = enabled(client, app)
    tokens = [login(client, user.email).json["mfa_token"] for _ in range(4)]
    code = code_at(secret)

    def finish(token):
        with app.test_client() as own:
            return second_step(own, token, code=code).status_code

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(finish, tokens)) == [200, 401, 401, 401]


def test_recovery_codes_are_single_use(client, app):
    user, _, _, codes = enabled(client, app)
    token = login(client, user.email).json["mfa_token"]
    assert second_step(client, token, recovery_code=codes[0].upper()).status_code == 200
    token = login(client, user.email).json["mfa_token"]
    assert second_step(client, token, recovery_code=codes[0]).status_code == 401
    assert second_step(client, token, recovery_code=codes[1].replace("-", "")).status_code == 200


def test_five_wrong_codes_spend_the_login_step(client, app):
    user, _, secret, _ = enabled(client, app)
    token = login(client, user.email).json["mfa_token"]
    for _ in range(5):
        assert second_step(client, token, code="000000").status_code == 401
    assert second_step(client, token, code=code_at(secret)).status_code == 401
    fresh = login(client, user.email).json["mfa_token"]
    assert second_step(client, fresh, code=code_at(secret)).status_code == 200


def test_wrong_codes_are_throttled_per_address(client, app):
    app.config["LOGIN_LIMIT_PER_IP"] = "3 per minute"
    try:
        statuses = [second_step(client, "no-such-token", code="123456").status_code
                    for _ in range(5)]  # fmt: skip
    finally:
        app.config["LOGIN_LIMIT_PER_IP"] = "1000 per minute"
    assert statuses == [401, 401, 401, 429, 429]


def test_the_qr_code_is_a_png_of_the_uri(client, app):
    user = make_user(app)
    headers = bearer(tokens_for(app, user)["access_token"])
    assert client.get(f"{API}/auth/2fa/qr.png", headers=headers).status_code == 404
    client.post(f"{API}/auth/2fa/setup", headers=headers)
    png = client.get(f"{API}/auth/2fa/qr.png", headers=headers)
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.headers["Cache-Control"] == "no-store"
    image = Image.open(io.BytesIO(png.data))
    assert image.format == "PNG" and image.size[0] == image.size[1] >= 150
    assert client.get(f"{API}/auth/2fa/qr.png").status_code == 401


def test_enabling_and_disabling_refuse_what_is_wrong(client, app):
    user = make_user(app)
    headers = bearer(tokens_for(app, user)["access_token"])
    url = f"{API}/auth/2fa"
    assert client.post(f"{url}/enable", headers=headers, json={"code": "123456"}).status_code == 409
    secret = client.post(f"{url}/setup", headers=headers).json["secret"]
    assert client.post(f"{url}/enable", headers=headers, json={"code": "12345"}).status_code == 422
    wrong = client.post(f"{url}/enable", headers=headers, json={"code": code_at(secret, 3)})
    assert wrong.status_code == 400
    off = {"password": PASSWORD, "code": code_at(secret)}
    assert client.post(f"{url}/disable", headers=headers, json=off).status_code == 409
    client.post(f"{url}/enable", headers=headers, json={"code": code_at(secret)})
    assert client.post(f"{url}/setup", headers=headers).status_code == 409
    bad_password = {"password": "not-it-at-all", "code": code_at(secret, 1)}
    assert client.post(f"{url}/disable", headers=headers, json=bad_password).status_code == 401
    replayed = {"password": PASSWORD, "code": code_at(secret)}
    assert client.post(f"{url}/disable", headers=headers, json=replayed).status_code == 400
    fine = {"password": PASSWORD, "code": code_at(secret, 1)}
    assert client.post(f"{url}/disable", headers=headers, json=fine).status_code == 204
    assert "access_token" in login(client, user.email).json  # one step again
    for path in ("setup", "enable", "disable"):
        assert client.post(f"{url}/{path}", json={"code": "123456"}).status_code == 401
    both = second_step(client, "x", code="123456", recovery_code="abc")
    assert both.status_code == 422
    assert second_step(client, "x").status_code == 422


def test_the_secret_is_not_shown_once_two_factor_is_on(client, app):
    _, headers, _, _ = enabled(client, app)
    assert client.get(f"{API}/auth/2fa/qr.png", headers=headers).status_code == 409
    # Digits that are not ASCII are a wrong code, not an error.
    arabic = {"password": PASSWORD, "code": "١٢٣٤٥٦"}
    assert client.post(f"{API}/auth/2fa/disable", headers=headers, json=arabic).status_code == 400
