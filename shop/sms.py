"""Text messages: queued in the outbox in the unit of work that causes them, sent by a job
(inline after commit on the embedded default). SMS_BACKEND=log writes each to the log, for a
developer to read; `http` POSTs `{to, body}` as JSON to SMS_HTTP_URL with the bearer
SMS_HTTP_TOKEN. A gateway that answers other than 2xx, or not within SMS_HTTP_TIMEOUT
seconds, fails the job, which RQ retries (JOB_RETRY_INTERVALS)."""

from __future__ import annotations

import logging

import httpx
from flask import current_app

from shop import outbox

log = logging.getLogger(__name__)


class SmsError(RuntimeError):
    """The gateway did not take the message; the job is retried."""


def queue_sms(to: str, body: str) -> None:
    """Text `body` to `to` (E.164) once the current unit of work commits."""
    outbox.add(send_sms, to=to, body=body)


def send_sms(to: str, body: str) -> None:
    config = current_app.config
    if config["SMS_BACKEND"] == "log":
        log.info("text message not sent (SMS_BACKEND=log)\nTo: %s\n\n%s", to, body,
                 extra={"to": to})  # fmt: skip
        return
    try:
        response = httpx.post(
            config["SMS_HTTP_URL"],
            json={"to": to, "body": body},
            headers={"Authorization": f"Bearer {config['SMS_HTTP_TOKEN']}"},
            timeout=config["SMS_HTTP_TIMEOUT"],
        )
    except httpx.HTTPError as error:  # refused, timed out, cut off
        raise SmsError(f"the SMS gateway did not answer: {error!r}") from error
    if not response.is_success:
        raise SmsError(f"the SMS gateway answered {response.status_code}")
