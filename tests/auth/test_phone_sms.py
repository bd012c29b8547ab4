"""Texts through SMS_BACKEND: `log` (what a developer running the app reads), and `http`
against a real local gateway: the JSON body and bearer token it gets, a 500 or a gateway that
hangs failing the job (so it is retried), and what the configuration refuses."""

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from shop import outbox
from shop.auth.models import User
from shop.config import ConfigError
from shop.db import db
from shop.outbox import OutboxMessage
from shop.sms import SmsError
from tests.auth.phone_helpers import API, NUMBER, phone_user, texts_to
from tests.factories import headers_for

TOKEN = "gateway-token-123"


class Gateway(ThreadingHTTPServer):
    """Answers each POST with the next of `answers` (then 200), or ("sleep", s) first; keeps
    every request it got."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers: list = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/messages"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        server: Gateway = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
        answer = server.answers.pop(0) if server.answers else 202
        if isinstance(answer, tuple):
            time.sleep(answer[1])  # shop has hung up by then
            return
        self.send_response(answer)
        self.end_headers()
        self.wfile.write(b'{"id": "m1"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway(app, monkeypatch):
    server = Gateway()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name, value in {
        "SMS_BACKEND": "http",
        "SMS_HTTP_URL": server.url,
        "SMS_HTTP_TOKEN": TOKEN,
        "SMS_HTTP_TIMEOUT": 0.5,
        "JOB_RETRY_INTERVALS": [0],  # one retry, at once
    }.items():
        monkeypatch.setitem(app.config, name, value)
    yield server
    server.shutdown()
    server.server_close()


def ask_for_a_code(client, app):
    headers = headers_for(app, phone_user(app, verified=False))
    assert client.post(f"{API}/auth/phone/verify-request", headers=headers).status_code == 202


def messages(app):
    with app.app_context():
        return list(db.session.scalars(select(OutboxMessage)))


def test_the_gateway_gets_the_number_and_the_text_with_the_bearer_token(
    client, app, gateway, run_jobs
):
    ask_for_a_code(client, app)
    assert gateway.requests == []  # a worker sends it
    assert run_jobs() == 1
    [(headers, body)] = gateway.requests
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["content-type"] == "application/json"
    sent = json.loads(body)
    assert set(sent) == {"to", "body"} and sent["to"] == NUMBER
    code = sent["body"].split()[0]
    assert sent["body"] == f"{code} is your shop code." and code.isdigit() and len(code) == 6
    assert messages(app) == []
    verified = client.post(
        f"{API}/auth/phone/verify", headers=headers_for(app, _user(app)), json={"code": code}
    )
    assert verified.status_code == 204


def _user(app):
    with app.app_context():
        return db.session.scalar(select(User))


def test_a_500_fails_the_job_and_the_retry_sends_it(client, app, gateway, run_jobs):
    gateway.answers = [500]
    ask_for_a_code(client, app)
    assert run_jobs() == 1  # failed, then retried at once in the same run
    first, again = gateway.requests
    assert first[1] == again[1]
    assert messages(app) == []


def test_a_gateway_that_hangs_times_out_and_the_message_waits(client, app, gateway):
    gateway.answers = [("sleep", 3)]
    ask_for_a_code(client, app)
    [message] = messages(app)
    started = time.monotonic()
    with app.app_context(), pytest.raises(SmsError):
        outbox.process(message.id)
    assert time.monotonic() - started < 2
    [message] = messages(app)
    assert message.attempts == 1 and "did not answer" in message.last_error
    with app.app_context():
        outbox.process(message.id)  # the retry: the gateway answers now
    assert len(gateway.requests) == 2 and messages(app) == []


def test_the_log_backend_writes_the_text_for_a_developer(client, app, caplog, run_jobs):
    caplog.set_level(logging.INFO, logger="shop.sms")
    ask_for_a_code(client, app)
    run_jobs()
    [record] = [r for r in caplog.records if r.name == "shop.sms"]
    message = record.getMessage()
    assert message.startswith("text message not sent (SMS_BACKEND=log)\nTo: +16502530000\n\n")
    assert message.split("\n\n")[1] == texts_to(caplog, NUMBER)[0]


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"SMS_BACKEND": "carrier-pigeon"}, "SMS_BACKEND is log or http"),
        ({"SMS_BACKEND": "http"}, "needs SMS_HTTP_URL and SMS_HTTP_TOKEN"),
        ({"SMS_BACKEND": "http", "SMS_HTTP_URL": "https://sms.example"}, "needs SMS_HTTP_TOKEN"),
        (
            {"SHOP_ENV": "production", "SECRET_KEY": "s" * 40, "JWT_SECRET_KEY": "j" * 40,
             "SMS_BACKEND": "http", "SMS_HTTP_URL": "http://sms.example", "SMS_HTTP_TOKEN": "t"},
            "https://",
        ),
    ],
)  # fmt: skip
def test_the_configuration_refuses_a_backend_it_cannot_use(other_app, settings, complaint):
    with pytest.raises(ConfigError, match=complaint):
        other_app(**settings)


def test_production_sends_to_an_https_gateway(other_app):
    gateway = {"SMS_HTTP_URL": "https://sms.example", "SMS_HTTP_TOKEN": "t"}
    app = other_app(
        SHOP_ENV="production",
        SECRET_KEY="s" * 40,
        JWT_SECRET_KEY="j" * 40,
        SMS_BACKEND="http",
        **gateway,
    )
    assert app.config["SMS_BACKEND"] == "http"
