"""The bed's mail host: an SMTP sink (aiosmtpd) that appends one JSON line per message it
receives (`{"at", "subject", "message_id", "to"}`) to a file, so the drill counts the emails.

Usage: python smtp_sink.py ADDRESS PORT FILE (run inside the mail host's namespace)."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from email.parser import BytesHeaderParser
from typing import Any

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, path: str) -> None:
        self.out = open(path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        headers = BytesHeaderParser().parsebytes(envelope.content)
        line = {
            "at": time.time(),
            "subject": str(headers.get("Subject", "")),
            "message_id": str(headers.get("Message-ID", "")),
            "to": list(envelope.rcpt_tos),
        }
        with self.lock:
            self.out.write(json.dumps(line) + "\n")
        return "250 OK"


def main() -> int:
    address, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    controller = Controller(Sink(path), hostname=address, port=port)
    controller.start()
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
