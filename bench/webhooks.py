"""`make bench-webhooks`: webhook deliveries per second with one RQ worker (`python worker.py`)
to a local receiver that answers 200 at once.

Events are written by the code every change uses (events.log.record in committed units of
work), the scheduler's tick (events.delivery.tick) fans them out into deliveries and hands
them to RQ, and one worker sends them, signed; the figure is deliveries over the time from
the hand-over to the last delivery recorded as succeeded.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from redis import Redis
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.data import fresh_app  # noqa: E402
from shop.db import db, unit_of_work  # noqa: E402
from shop.events.delivery import tick  # noqa: E402
from shop.events.log import record  # noqa: E402
from shop.events.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint  # noqa: E402
from shop.events.webhooks import new_secret  # noqa: E402


class Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument(
        "--database", default="postgresql://postgres@127.0.0.1:5432/shop_bench_webhooks"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    app, env = fresh_app(args.database, args.redis, WEBHOOK_ALLOW_PRIVATE="true")
    Redis.from_url(args.redis).flushdb()
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with app.app_context():
        with unit_of_work() as session:
            url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"
            session.add(WebhookEndpoint(url=url, events=["*"], secret=new_secret()))
        time.sleep(0.01)  # events after the endpoint was added
        for n in range(args.events):
            with unit_of_work():
                record("order.status_changed", {"n": n, "status": "shipped"}, user_id=None)
        handed_over = time.monotonic()
        fanned = 0
        while fanned < args.events:
            fanned += tick()["fanned_out"]
    worker = subprocess.run(
        [sys.executable, "worker.py", "--burst"], cwd=ROOT, env=env, capture_output=True
    )
    took = time.monotonic() - handed_over
    with app.app_context():
        succeeded = db.session.scalar(
            select(func.count()).where(WebhookDelivery.status == DeliveryStatus.SUCCEEDED)
        )
    receiver.shutdown()
    print(
        f"{succeeded} of {args.events} deliveries succeeded in {took:.1f} s with 1 worker: "
        f"{succeeded / took:.0f} deliveries/s (worker exit {worker.returncode})"
    )
    return 0 if succeeded == args.events else 1


if __name__ == "__main__":
    sys.exit(main())
