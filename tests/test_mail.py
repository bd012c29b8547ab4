"""Emails as customers read them (plain text and HTML, a link to the storefront, the store's
name), and as a newcomer without an SMTP server sees them (the log, `flask mail outbox`)."""

import logging
import re

from sqlalchemy import func, select

from shop import mail
from shop.db import db, unit_of_work
from shop.outbox import OutboxMessage
from tests.conftest import text_of

API = "/api/v1"


def test_the_reset_email_links_to_the_storefront_in_text_and_html(
    client, app, customer, mailbox, run_jobs, monkeypatch
):
    monkeypatch.setitem(app.config, "STORE_NAME", "Acme Goods")
    monkeypatch.setitem(app.config, "STOREFRONT_URL", "https://acme.example/")
    client.post(f"{API}/auth/password-reset", json={"email": customer.email})
    run_jobs()
    run_jobs()
    [message] = mailbox.to(customer.email)
    assert "Acme Goods" in message["Subject"] and "Acme Goods" in message["From"]
    text = text_of(message)
    link = re.search(r"https://acme\.example/reset-password\?token=[\w-]{40,}", text)
    assert link, text
    assert "POST /api" not in text
    html = message.get_body(preferencelist=("html",)).get_content()
    assert f'href="{link.group(0)}"' in html
    assert message["Content-Transfer-Encoding"] is None  # multipart; parts keep lines whole
    assert all(part["Content-Transfer-Encoding"] == "7bit" for part in message.iter_parts())


def test_without_an_smtp_server_the_whole_email_is_logged_and_kept(other_app, caplog, tmp_path):
    app = other_app(MAIL_SERVER=None, REDIS_URL=None)  # as `make run`: jobs run inline
    app.instance_path = str(tmp_path)
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="shop.mail"):
        client.post(
            f"{API}/auth/register", json={"email": "new@example.com", "password": "new-pass-123"}
        )
    [record] = [r for r in caplog.records if r.name == "shop.mail"]
    logged = record.getMessage()
    code = re.search(r"verification code is (\d{6})", logged).group(1)
    assert "To: new@example.com" in logged and "Subject:" in logged
    shown = app.test_cli_runner().invoke(args=["mail", "outbox"])
    assert shown.exit_code == 0 and code in shown.output and "new@example.com" in shown.output


def test_addresses_in_the_invalid_domain_are_never_queued(app):
    """An erased account's address (deleted-<id>@invalid, RFC 2606) gets nothing."""
    with app.app_context(), unit_of_work():
        mail.queue_email(["deleted-7@invalid", "x@shop.invalid"], "password_changed", user=None)
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert not mail.undeliverable("ada@example.com")
