"""`make drill`: the failover drill of issue 22 on the multi-host bed (bed.py).

Clients on the host (10.231.0.1) talk to HAProxy only. Shoppers (one per generated customer)
place orders of the hot product, each with an Idempotency-Key (also written in the order's
`notes`) and retried with that key on any failure until it is a 201; readers browse the
catalog; WebSocket clients (each shopper, and one staff member who sees every event) record
every event id they get, and reconnect with their last_event_id whenever their connection ends.
Then app host 1 dies (kill -9 of every process in its namespace: gunicorn master and workers,
its RQ worker, its realtime); HAProxy must mark it down while traffic goes on on host 2; the
host comes back and must be in rotation again. After the traffic stops and the queues drain:

- every order answered 201 exists exactly once, none more (per key, per customer);
- every order got exactly one confirmation email (distinct Message-ID) at the SMTP sink;
- every WebSocket client got exactly the events of the log it may see, in order, no gap and
  no duplicate;
- the apps saw the clients' address (X-Forwarded-For through HAProxy, TRUSTED_PROXIES=1);
- the replica streams (pg_stat_replication).

The verdict line is printed last: `DRILL PASS: ...` or `DRILL FAIL: <reasons>` (exit 1).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import traceback
import uuid
from typing import Any

import httpx
from bed import CLIENT, Bed, address, wait
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

API = "/api/v1"
PACE = 0.4  # seconds between a shopper's orders
WARMUP, DOWN_FOR, AFTER = 8.0, 10.0, 8.0  # seconds: before the kill, host 1 dead, after it is back
ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
FIRST_POSITION = "0" * 32  # replay the whole log this client may see
# A confirmation whose job was running on host 1's RQ worker when it died is retried once that
# job's lease in RQ's started registry is over (the heartbeat's 60 s past the 30 s monitoring
# interval), the other worker's maintenance (every 30 s) sees it, and its retry (10 s) comes up:
# some 2 minutes after the kill.
EMAIL_BUDGET, EVENTS_BUDGET = 240.0, 30.0


class Shopper(threading.Thread):
    """One customer placing orders until told to stop; a key once sent is retried (same key,
    same body) until it is answered 201."""

    def __init__(
        self,
        base: str,
        user_id: int,
        token: str,
        product_id: int,
        stop: threading.Event,
        log: list[tuple[float, str, int]],
    ) -> None:
        super().__init__(daemon=True)
        self.base, self.user_id, self.token, self.product_id = base, user_id, token, product_id
        self.stop, self.log = stop, log
        self.orders: dict[str, tuple[int, str]] = {}  # key -> (order id, number)
        self.asked = self.attempts = 0
        self.gave_up: list[str] = []

    def run(self) -> None:
        auth = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base, timeout=10) as client:
            while not self.stop.is_set():
                key = uuid.uuid4().hex
                body = {
                    "items": [{"product_id": self.product_id, "quantity": 1}],
                    "shipping_address": ADDRESS,
                    "notes": f"drill {key}",
                }
                self.asked += 1
                began = time.monotonic()
                while True:
                    self.attempts += 1
                    try:
                        answer = client.post(
                            f"{API}/orders", json=body, headers={**auth, "Idempotency-Key": key}
                        )
                        status = answer.status_code
                    except httpx.TransportError:
                        status = 0
                    self.log.append((time.monotonic(), "order", status))
                    if status == 201:
                        self.orders[key] = (answer.json()["id"], answer.json()["number"])
                        break
                    if time.monotonic() - began > 120:
                        self.gave_up.append(key)
                        break
                    time.sleep(0.3)
                time.sleep(PACE)


class Reader(threading.Thread):
    def __init__(
        self, base: str, product_id: int, stop: threading.Event, log: list[tuple[float, str, int]]
    ) -> None:
        super().__init__(daemon=True)
        self.base, self.product_id, self.stop, self.log = base, product_id, stop, log

    def run(self) -> None:
        paths = [f"{API}/products?page_size=20", f"{API}/products/{self.product_id}"]
        with httpx.Client(base_url=self.base, timeout=10) as client:
            turn = 0
            while not self.stop.is_set():
                try:
                    status = client.get(paths[turn % 2]).status_code
                except httpx.TransportError:
                    status = 0
                self.log.append((time.monotonic(), "read", status))
                turn += 1
                time.sleep(0.05)


class Listener:
    """A WebSocket client through HAProxy: every event id it receives, in order; it reconnects
    with its last id whenever its connection ends."""

    def __init__(self, name: str, token: str) -> None:
        self.name, self.token = name, token
        self.received: list[str] = []
        self.connections = 0

    async def listen(self, url: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            last = self.received[-1] if self.received else FIRST_POSITION
            try:
                async with connect(url, open_timeout=10, max_queue=None) as socket_:
                    await socket_.send(
                        json.dumps({"action": "auth", "token": self.token, "last_event_id": last})
                    )
                    welcome = json.loads(await socket_.recv())
                    if welcome.get("type") != "welcome":
                        raise RuntimeError(f"{self.name}: {welcome}")
                    self.connections += 1
                    async for message in socket_:
                        event = json.loads(message)
                        if "id" in event:
                            self.received.append(event["id"])
            except (TimeoutError, OSError, WebSocketException):
                pass
            await asyncio.sleep(0.3)


def listen_all(listeners: list[Listener], url: str) -> tuple[threading.Thread, Any]:
    """The listeners on an event loop of their own (a thread); returns it and its stop."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        await asyncio.gather(*(one.listen(url, stop) for one in listeners))

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    return thread, lambda: loop.call_soon_threadsafe(stop.set)


def login(base: str, email: str, password: str) -> tuple[int, str]:
    answer = httpx.post(
        f"{base}{API}/auth/login", json={"email": email, "password": password}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["user"]["id"]), str(answer.json()["access_token"])


def confirmed(subject: str) -> str | None:
    """The order number of a confirmation's subject ("Order ORD-... received")."""
    parts = subject.split()
    if len(parts) == 3 and parts[0] == "Order" and parts[2] == "received":
        return parts[1]
    return None


def position(txid: int, id_: int) -> str:
    return f"{txid:016d}{id_:016d}"


class Drill:
    def __init__(self, bed: Bed) -> None:
        self.bed, self.base = bed, bed.base
        self.log: list[tuple[float, str, int]] = []
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.figures: dict[str, Any] = {}
        self.killed_at = 0.0  # wall clock, as the SMTP sink's arrivals

    def check(self, ok: bool, failure: str) -> None:
        if not ok:
            self.failures.append(failure)

    def run(self) -> None:
        bed = self.bed
        _, admin = login(self.base, "admin@example.com", "admin-pass-123")
        product = httpx.post(
            f"{self.base}{API}/products",
            headers={"Authorization": f"Bearer {admin}"},
            json={"sku": "DRILL-1", "name": "Failover mug", "price": "9.50", "stock": 1_000_000},
        )
        assert product.status_code == 201, product.text
        product_id = product.json()["id"]
        emails = [
            r[0]
            for r in bed.sql(
                "db",
                "SELECT email FROM users WHERE email ~ '^customer[0-9]+@example.com$' ORDER BY id",
            )
        ]
        customers = [login(self.base, e, "customer-pass-123") for e in emails]
        staff_id, staff = login(self.base, "staff@example.com", "staff-pass-123")
        shoppers = [Shopper(self.base, i, t, product_id, self.stop, self.log) for i, t in customers]
        readers = [Reader(self.base, product_id, self.stop, self.log) for _ in range(2)]
        listeners = [Listener(f"customer {i}", t) for i, t in customers]
        listeners.append(Listener("staff", staff))
        owners: list[int | None] = [i for i, _ in customers] + [None]
        ws_url = f"ws://{address('lb')}{API}/ws/notifications"
        ws_thread, ws_stop = listen_all(listeners, ws_url)
        for thread in [*shoppers, *readers]:
            thread.start()

        time.sleep(WARMUP)
        self.check(sum(len(s.orders) for s in shoppers) > 0, "no order before the kill")
        killed, self.killed_at = time.monotonic(), time.time()
        bed.kill_host("app1")
        down = wait(lambda: bed.status("app1") == ("DOWN", "DOWN"), 20, step=0.05)
        self.check(down is not None, f"HAProxy did not mark host 1 down: {bed.status('app1')}")
        time.sleep(DOWN_FOR)
        restarted = time.monotonic()
        served = [s for at, _, s in self.log if killed + (down or 0) < at < restarted]
        ok_while_down = sum(1 for s in served if 200 <= s < 300)
        self.check(ok_while_down > 0, "nothing answered while host 1 was down")
        bed.start_app_host("app1")
        back = wait(lambda: bed.status("app1") == ("UP", "UP"), 90, step=0.1)
        self.check(back is not None, f"host 1 did not come back: {bed.status('app1')}")
        seen_at_back = int(bed.servers()[("web", "app1")]["stot"])
        time.sleep(AFTER)
        seen_after = int(bed.servers()[("web", "app1")]["stot"]) - seen_at_back
        self.check(seen_after > 0, "host 1 got no request after it was back")
        self.stop.set()
        for thread in [*shoppers, *readers]:
            thread.join(timeout=180)

        self.check_orders(shoppers)
        self.check_emails(shoppers)
        self.check_events(listeners, owners, staff_id)
        ws_stop()
        ws_thread.join(timeout=10)
        self.check_forwarded_for()
        replication = bed.replication()
        self.check(replication == [(address("replica"), "streaming")], f"replication {replication}")
        failed = [s for _, _, s in self.log if s == 0 or s >= 500]
        self.figures.update(
            retries=sum(s.attempts - s.asked for s in shoppers),
            answers_failed=len(failed),
            answers=len(self.log),
            marked_down=down,
            out=restarted + (back or 0) - killed - (down or 0),
            back=back,
            ok_while_down=ok_while_down,
            host1_after=seen_after,
            reconnects=sum(one.connections - 1 for one in listeners),
            lag=bed.replica_lag_bytes(),
        )
        self.check(self.figures["reconnects"] > 0, "no WebSocket client had to reconnect")

    def check_orders(self, shoppers: list[Shopper]) -> None:
        answered = {oid: key for s in shoppers for key, (oid, _) in s.orders.items()}
        ids = ",".join(str(s.user_id) for s in shoppers)
        rows = self.bed.sql("db", f"SELECT id, user_id, notes FROM orders WHERE user_id IN ({ids})")
        stored = {oid: notes.removeprefix("drill ") for oid, _, notes in rows}
        lost = set(answered) - set(stored)
        extra = set(stored) - set(answered)
        keys = [key for key in stored.values()]
        per_key_duplicates = len(keys) - len(set(keys))
        wrong_key = sum(1 for oid, key in answered.items() if stored.get(oid, key) != key)
        per_user = {s.user_id: 0 for s in shoppers}
        for _, user_id, _ in rows:
            per_user[user_id] += 1
        short = [s.user_id for s in shoppers if per_user[s.user_id] != s.asked]
        gave_up = sum(len(s.gave_up) for s in shoppers)
        self.check(not lost, f"{len(lost)} orders answered 201 are not in the database")
        self.check(not extra, f"{len(extra)} orders stored that no client was answered")
        self.check(not per_key_duplicates, f"{per_key_duplicates} duplicate orders for a key")
        self.check(not wrong_key, f"{wrong_key} orders under another key")
        self.check(not short, f"customers {short}: orders stored != orders asked for")
        self.check(not gave_up, f"{gave_up} keys never answered 201 in 120 s")
        self.figures["orders"] = len(answered)

    def check_emails(self, shoppers: list[Shopper]) -> None:
        numbers = {number for s in shoppers for _, number in s.orders.values()}

        def confirmations() -> dict[str, set[str]]:
            found: dict[str, set[str]] = {}
            for mail in self.bed.mails():
                if number := confirmed(mail["subject"]):
                    found.setdefault(number, set()).add(mail["message_id"])
            return found

        wait(lambda: numbers <= set(confirmations()), EMAIL_BUDGET, step=1)
        arrivals = [m["at"] for m in self.bed.mails() if confirmed(m["subject"]) in numbers]
        self.figures["last_email"] = max(arrivals, default=self.killed_at) - self.killed_at
        sent = confirmations()
        missing = [n for n in numbers if n not in sent]
        twice = [n for n in numbers if len(sent.get(n, ())) > 1]
        if missing:
            left = self.bed.sql("db", "SELECT count(*), max(attempts) FROM outbox_messages")
            self.failures.append(f"{len(missing)} orders not emailed (outbox: {left[0]})")
        self.check(not twice, f"{len(twice)} orders emailed more than once")
        delivered = [m for m in self.bed.mails() if confirmed(m["subject"]) in numbers]
        self.figures["emails"] = len(numbers) - len(missing) - len(twice)
        self.figures["resent"] = len(delivered) - len({m["message_id"] for m in delivered})

    def check_events(
        self, listeners: list[Listener], owners: list[int | None], staff_id: int
    ) -> None:
        def expected(owner: int | None) -> list[str]:
            where = "" if owner is None else f"WHERE user_id = {owner}"
            rows = self.bed.sql("db", f"SELECT txid, id FROM events {where} ORDER BY txid, id")
            return [position(txid, id_) for txid, id_ in rows]

        def complete() -> bool:
            return all(
                one.received == expected(o) for one, o in zip(listeners, owners, strict=True)
            )

        wait(complete, EVENTS_BUDGET, step=1)
        for one, owner in zip(listeners, owners, strict=True):
            wanted, got = expected(owner), list(one.received)
            if got != wanted:
                missed = len(set(wanted) - set(got))
                doubled = len(got) - len(set(got))
                unordered = got != sorted(got)
                self.failures.append(
                    f"{one.name}: {len(got)} events for {len(wanted)} ({missed} missed, "
                    f"{doubled} twice, {'out of order' if unordered else 'in order'})"
                )
        self.figures["events"] = sum(len(one.received) for one in listeners)
        self.figures["listeners"] = len(listeners)

    def check_forwarded_for(self) -> None:
        """The login sessions record the client's address as the app saw it."""
        seen = {r[0] for r in self.bed.sql("db", "SELECT DISTINCT ip FROM sessions")}
        self.check(seen == {CLIENT}, f"the apps saw the client as {seen}, not {CLIENT}")


def verdict(drill: Drill) -> str:
    f = drill.figures
    if drill.failures:
        return "DRILL FAIL: " + "; ".join(drill.failures)
    return (
        f"DRILL PASS: {f['orders']} orders, {f['retries']} retries "
        f"({f['answers_failed']} of {f['answers']} answers failed or 5xx), "
        f"{f['events']} events to {f['listeners']} WebSocket clients "
        f"({f['reconnects']} reconnects, none missed or doubled), "
        f"host1 marked down {f['marked_down']:.1f} s after kill -9, out of rotation "
        f"{f['out']:.1f} s, back {f['back']:.1f} s after restart ({f['host1_after']} requests "
        f"after); {f['ok_while_down']} answers 2xx meanwhile from host2; {f['emails']} orders "
        f"emailed once, the last {f['last_email']:.0f} s after the kill ({f['resent']} resent with "
        f"the same Message-ID); replica streaming, "
        f"lag {f['lag']} bytes"
    )


def main() -> int:
    started = time.monotonic()
    drill: Drill | None = None
    try:
        with Bed() as bed:
            print(f"bed up in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
            drill = Drill(bed)
            try:
                drill.run()
            except Exception as error:
                traceback.print_exc()
                drill.failures.append(f"{type(error).__name__}: {error}")
            if drill.failures:
                bed.keep_logs = True
    except Exception as error:
        traceback.print_exc()
        line = f"DRILL FAIL: the bed: {type(error).__name__}: {error}"
    else:
        assert drill is not None
        line = verdict(drill)
    print(line, flush=True)
    return 0 if line.startswith("DRILL PASS") else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("DRILL FAIL: interrupted (the bed is stopped)", flush=True)
        sys.exit(130)
