"""The profile's date of birth, and POST /auth/token/verify."""

from datetime import date, timedelta

import pytest

from tests.factories import PASSWORD, bearer, make_user, tokens_for

API = "/api/v1"


def years_ago(years, days=0):
    today = date.today()
    try:
        born = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        born = today.replace(year=today.year - years, day=28)
    return (born + timedelta(days=days)).isoformat()


def test_date_of_birth_is_optional_and_kept(client, app):
    headers = bearer(tokens_for(app, make_user(app))["access_token"])
    assert client.get(f"{API}/auth/me", headers=headers).json["date_of_birth"] is None
    born = years_ago(13)
    changed = client.patch(f"{API}/auth/me", headers=headers, json={"date_of_birth": born})
    assert (changed.status_code, changed.json["date_of_birth"]) == (200, born)
    cleared = client.patch(f"{API}/auth/me", headers=headers, json={"date_of_birth": None})
    assert cleared.json["date_of_birth"] is None
    registered = client.post(
        f"{API}/auth/register",
        json={"email": "dob@example.com", "password": "good-pass-123", "date_of_birth": born},
    )
    assert registered.status_code == 201 and registered.json["date_of_birth"] == born


@pytest.mark.parametrize(
    "born", [years_ago(13, days=1), (date.today() + timedelta(days=1)).isoformat(), "1990-02-30",
             "yesterday", 19900101],
)  # fmt: skip
def test_a_date_of_birth_in_the_future_or_under_13_is_422(client, app, born):
    headers = bearer(tokens_for(app, make_user(app))["access_token"])
    refused = client.patch(f"{API}/auth/me", headers=headers, json={"date_of_birth": born})
    assert refused.status_code == 422 and refused.json["errors"]["date_of_birth"]


def verify(client, token):
    response = client.post(f"{API}/auth/token/verify", json={"token": token})
    assert response.status_code == 200
    return response.json


def test_a_token_is_valid_while_it_would_be_accepted(client, app):
    user = make_user(app)
    login = client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
    access, refresh = login.json["access_token"], login.json["refresh_token"]
    seen = verify(client, access)
    assert (seen["valid"], seen["type"], seen["user_id"]) == (True, "access", user.id)
    assert seen["exp"] is not None
    assert verify(client, refresh)["type"] == "refresh" and verify(client, refresh)["valid"]
    rotated = client.post(f"{API}/auth/refresh", headers=bearer(refresh))
    assert rotated.status_code == 200
    assert verify(client, refresh) == {**verify(client, refresh), "valid": False}
    client.post(f"{API}/auth/logout", headers=bearer(access))
    assert verify(client, access)["valid"] is False
    assert verify(client, access)["user_id"] == user.id
    for junk in ("not-a-token", access[:-3] + "abc"):
        assert verify(client, junk) == {"valid": False, "type": None, "exp": None,
                                        "user_id": None}  # fmt: skip
    assert client.post(f"{API}/auth/token/verify", json={}).status_code == 422
