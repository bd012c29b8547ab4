"""Email: rendered from templates when queued (plain text, and HTML where a template exists),
sent over SMTP by a job. Its Message-ID is chosen when it is queued, so a job retried after
the SMTP server took the message (the database went away before the job could record it)
sends the same message again, which receivers recognise as one. Without MAIL_SERVER a
message is printed to the log in full and kept in `instance/mail/` (the last KEPT; `flask mail
outbox` shows them)."""

from __future__ import annotations

import logging
import smtplib
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path
from typing import Any

from flask import current_app, render_template
from jinja2 import TemplateNotFound

from shop import outbox

log = logging.getLogger(__name__)
KEPT = 20


def undeliverable(address: str) -> bool:
    """An address in the reserved `.invalid` domain (RFC 2606), as an erased account's is."""
    domain = address.rpartition("@")[2].lower()
    return domain == "invalid" or domain.endswith(".invalid")


def queue_email(to: list[str] | str, template: str, **context: Any) -> None:
    """Queue `templates/email/<template>.txt` (first line: the subject), and its `.html`
    counterpart if there is one, for after commit; undeliverable addresses are left out."""
    recipients = [r for r in ([to] if isinstance(to, str) else to) if not undeliverable(r)]
    if not recipients:
        return
    config = current_app.config
    context = {
        "store_name": config["STORE_NAME"],
        "storefront_url": config["STOREFRONT_URL"].rstrip("/"),
        **context,
    }
    subject, _, body = render_template(f"email/{template}.txt", **context).partition("\n")
    try:
        html = render_template(f"email/{template}.html", subject=subject.strip(), **context)
    except TemplateNotFound:
        html = None
    outbox.add(
        send_email,
        to=recipients,
        subject=subject.strip(),
        body=body.lstrip("\n"),
        html=html,
        message_id=make_msgid(domain="shop"),
    )


def _encoding(text: str) -> str:
    # 7bit keeps long lines (links) whole; quoted-printable would break them mid-word.
    return "7bit" if text.isascii() else "quoted-printable"


def send_email(
    to: list[str],
    subject: str,
    body: str,
    html: str | None = None,
    message_id: str | None = None,  # None: queued before Message-IDs were chosen at queue time
) -> None:
    config = current_app.config
    message = EmailMessage()
    message["From"] = formataddr((config["STORE_NAME"], config["MAIL_DEFAULT_SENDER"]))
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id or make_msgid(domain="shop")
    message.set_content(body, cte=_encoding(body))
    if html is not None:
        message.add_alternative(html, subtype="html", cte=_encoding(html))
    if not config["MAIL_SERVER"]:
        _keep(message, body)
        return
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=15) as smtp:
        if config["MAIL_USE_TLS"]:
            smtp.starttls()
        if config["MAIL_USERNAME"]:
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
        smtp.send_message(message)


def _mail_dir() -> Path:
    return Path(current_app.instance_path) / "mail"


def _keep(message: EmailMessage, body: str) -> None:
    """No SMTP server: the whole message goes to the log, and to instance/mail/."""
    log.info(
        "email not sent (MAIL_SERVER unset)\nTo: %s\nSubject: %s\n\n%s",
        message["To"],
        message["Subject"],
        body,
        extra={"to": message["To"], "subject": message["Subject"]},
    )
    folder = _mail_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{time.time_ns()}.eml").write_bytes(message.as_bytes(policy=policy.SMTP))
    for old in sorted(folder.glob("*.eml"))[:-KEPT]:
        old.unlink(missing_ok=True)


def kept_messages(last: int) -> list[EmailMessage]:
    """The last messages kept because no SMTP server was set, oldest first."""
    parser = BytesParser(policy=policy.default)
    paths = sorted(_mail_dir().glob("*.eml"))[-last:] if last > 0 else []
    return [parser.parsebytes(path.read_bytes()) for path in paths]
