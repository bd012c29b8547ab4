"""Email: rendered from templates when queued, sent over SMTP by a job."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from flask import current_app, render_template

from shop import outbox

log = logging.getLogger(__name__)


def queue_email(to: list[str] | str, template: str, **context: Any) -> None:
    """Queue `templates/email/<template>.txt` (first line: the subject) for after commit."""
    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients:
        return
    subject, _, body = render_template(f"email/{template}.txt", **context).partition("\n")
    outbox.add(send_email, to=recipients, subject=subject.strip(), body=body.lstrip("\n"))


def send_email(to: list[str], subject: str, body: str) -> None:
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_DEFAULT_SENDER"]
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="shop")
    message.set_content(body)
    if not config["MAIL_SERVER"]:
        log.info("MAIL_SERVER unset; email not sent", extra={"to": to, "subject": subject})
        return
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=15) as smtp:
        if config["MAIL_USE_TLS"]:
            smtp.starttls()
        if config["MAIL_USERNAME"]:
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
        smtp.send_message(message)
