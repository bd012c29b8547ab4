"""What the phone tests share: users with a phone, and the codes texted to it (SMS_BACKEND=log,
read from the log as a developer would)."""

import re

from shop.db import utcnow
from tests.factories import make_user

API = "/api/v1"
NUMBER = "+16502530000"
OTHER_NUMBER = "+442079460000"


def phone_user(app, number=NUMBER, verified=True, **fields):
    return make_user(app, phone=number, phone_verified_at=utcnow() if verified else None, **fields)


def texts_to(caplog, number):
    """The bodies of the texts logged for `number`, oldest first."""
    return [
        record.getMessage().split("\n\n", 1)[1]
        for record in caplog.records
        if record.name == "shop.sms" and getattr(record, "to", None) == number
    ]


def sent_codes(caplog, run_jobs, number):
    """Run the queued jobs (a request's lookup, then its text) and answer the codes texted to
    `number` so far."""
    while run_jobs():
        pass
    return [re.fullmatch(r"(\d{6}) is your shop code\.", text).group(1)
            for text in texts_to(caplog, number)]  # fmt: skip


def other_code(code):
    return f"{(int(code) + 1) % 10**6:06d}"
