"""Sessions: one per login (address, user agent, last refresh), listed by their user, and
revoked: the refresh token at once, the access tokens at their next request."""

from datetime import timedelta

from sqlalchemy import func, select, update

from shop.auth.models import LoginSession
from shop.auth.tokens import purge_expired_tokens
from shop.db import db, utcnow
from tests.factories import PASSWORD, bearer, make_user

API = "/api/v1"


def login(client, email, agent):
    response = client.post(
        f"{API}/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"User-Agent": agent},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert response.status_code == 200
    return response.json


def test_each_login_is_a_session_listed_with_the_current_one(client, app):
    user = make_user(app)
    phone = login(client, user.email, "Phone/1.0")
    laptop = login(client, user.email, "Laptop/2.0")
    listed = client.get(f"{API}/auth/sessions", headers=bearer(laptop["access_token"]))
    assert listed.status_code == 200
    assert [(s["user_agent"], s["current"], s["ip"]) for s in listed.json] == [
        ("Laptop/2.0", True, "203.0.113.7"),
        ("Phone/1.0", False, "203.0.113.7"),
    ]
    refreshed = client.post(f"{API}/auth/refresh", headers=bearer(phone["refresh_token"]))
    assert refreshed.status_code == 200
    again = client.get(f"{API}/auth/sessions", headers=bearer(refreshed.json["access_token"]))
    assert [s["current"] for s in again.json] == [False, True]  # still one session each
    assert again.json[1]["last_used_at"] > listed.json[1]["last_used_at"]


def test_revoking_a_session_ends_its_tokens_at_once_and_no_other(client, app):
    user = make_user(app)
    phone = login(client, user.email, "Phone/1.0")
    laptop = login(client, user.email, "Laptop/2.0")
    sessions = client.get(f"{API}/auth/sessions", headers=bearer(laptop["access_token"])).json
    phone_id = next(s["id"] for s in sessions if not s["current"])
    url = f"{API}/auth/sessions/{phone_id}"
    assert client.delete(url, headers=bearer(laptop["access_token"])).status_code == 204
    assert client.get(f"{API}/auth/me", headers=bearer(phone["access_token"])).status_code == 401
    assert client.post(
        f"{API}/auth/refresh", headers=bearer(phone["refresh_token"])
    ).status_code == (401)
    assert client.get(f"{API}/auth/me", headers=bearer(laptop["access_token"])).status_code == 200
    assert client.delete(url, headers=bearer(laptop["access_token"])).status_code == 404
    listed = client.get(f"{API}/auth/sessions", headers=bearer(laptop["access_token"])).json
    assert [s["user_agent"] for s in listed] == ["Laptop/2.0"]


def test_another_users_session_is_404_and_anonymous_401(client, app):
    mine = login(client, make_user(app).email, "A")
    theirs = login(client, make_user(app).email, "B")
    their_id = client.get(f"{API}/auth/sessions", headers=bearer(theirs["access_token"])).json[0]
    url = f"{API}/auth/sessions/{their_id['id']}"
    assert client.delete(url, headers=bearer(mine["access_token"])).status_code == 404
    assert client.get(f"{API}/auth/me", headers=bearer(theirs["access_token"])).status_code == 200
    assert client.get(f"{API}/auth/sessions").status_code == 401
    assert client.delete(url).status_code == 401
    assert client.delete(
        f"{API}/auth/sessions/nope", headers=bearer(mine["access_token"])
    ).status_code == (404)


def test_logout_and_a_password_change_end_sessions_and_old_ones_are_purged(client, app):
    user = make_user(app)
    first = login(client, user.email, "A")
    second = login(client, user.email, "B")
    client.post(f"{API}/auth/logout", headers=bearer(first["access_token"]),
                json={"refresh_token": first["refresh_token"]})  # fmt: skip
    listed = client.get(f"{API}/auth/sessions", headers=bearer(second["access_token"])).json
    assert [s["user_agent"] for s in listed] == ["B"]
    changed = client.post(
        f"{API}/auth/change-password",
        headers=bearer(second["access_token"]),
        json={"current_password": PASSWORD, "new_password": "another-good-pass-7"},
    )
    assert changed.status_code == 204
    with app.app_context():
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(LoginSession)
                .where(LoginSession.revoked_at.is_(None))
            )
            == 0
        )
        db.session.execute(update(LoginSession).values(last_used_at=utcnow() - timedelta(days=31)))
        db.session.commit()
        assert purge_expired_tokens()["sessions"] == 2
