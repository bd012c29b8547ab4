"""`make faults`: shop under real faults, one verdict line per fault.

Starts a PostgreSQL cluster and a Redis (AOF, fsync every second) of its own on free ports in
a temporary folder, an SMTP sink, gunicorn (2 workers), an RQ worker and the scheduler, as
deployed. Shoppers place orders the whole time, each with an Idempotency-Key and retried with it
on any failure until it is a 201, as a careful client does; readers browse the catalog. Then,
one after another:

1. PostgreSQL crashes (`pg_ctl stop -m immediate`) and is back after 10 s;
2. Redis hangs (SIGSTOP) for 20 s;
3. Redis is killed (SIGKILL) and restarted from its AOF 5 s later;
4. Redis is killed and comes back empty (its AOF gone: queued jobs and the schedule lost);
5. a web worker is killed (kill -9) under traffic;
6. the RQ worker's process group is killed (kill -9) and started again 5 s later;
7. every web worker is killed while its after-commit hand-over hangs on a stopped Redis.

Each verdict line gives its figures (answers 500 and 503, time to recover, read p95 against the
baseline, emails late); the last line checks every order: none lost, none duplicated, each
emailed exactly once. Exit status 1 when a verdict fails. Takes about three minutes; nothing
outside the temporary folder and 127.0.0.1 is touched, and everything stops by itself.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg2
from aiosmtpd.controller import Controller
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv/bin"
API = "/api/v1"
PACE = 0.5  # seconds between a shopper's orders: some 5 orders/s, what one RQ worker keeps up with
FIRST_EMAIL_BUDGET = 10.0  # the relay's tick (SCHEDULER_INTERVAL, 2 s here) and a job
ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait(predicate: Callable[[], bool], timeout: float, step: float = 0.2) -> float | None:
    """Seconds until `predicate` held, or None after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if predicate():
                return time.monotonic() - started
        except Exception:  # a dependency still down
            pass
        time.sleep(step)
    return None


class Postgres:
    """A cluster of our own (as the postgres user when run as root: initdb refuses root)."""

    def __init__(self, folder: Path) -> None:
        self.bin = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
        self.data, self.port = folder / "pg", free_port()
        self.data.mkdir()
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
            shutil.chown(self.data, "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self.run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/shop"
        self.start()
        connection = psycopg2.connect(self.url.replace("/shop", "/postgres"))
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE shop")
        connection.close()

    def run(self, tool: str, *args: Any) -> None:
        command = [*self.as_owner, str(self.bin / tool), *map(str, args)]
        subprocess.run(command, check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        self.run("pg_ctl", "-D", self.data, "-l", self.data / "log", "-o", options, "-w", "start")

    def crash(self) -> None:
        self.run("pg_ctl", "-D", self.data, "-m", "immediate", "stop")

    def stop(self) -> None:
        subprocess.run(
            [*self.as_owner, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"],
            capture_output=True,
        )


class RedisServer:
    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.folder)]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
        )
        assert wait(lambda: Redis.from_url(self.url).ping(), 10) is not None, "Redis did not start"

    def signal(self, number: int) -> None:
        os.kill(self.process.pid, number)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait()


class Inbox:
    """The SMTP sink: when each order's confirmation arrived, per Message-ID (a job retried
    after the server took its message sends it again with the same Message-ID: one email to
    a receiver, counted apart as sent again)."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str, str]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        headers = {}
        for line in envelope.content.decode(errors="replace").splitlines():
            if not line:
                break
            name, _, value = line.partition(": ")
            headers[name] = value
        with self.lock:
            self.received.append(
                (time.monotonic(), headers.get("Subject", ""), headers.get("Message-ID", ""))
            )
        return "250 OK"

    def confirmations(self) -> dict[str, dict[str, float]]:
        """Order number -> each distinct Message-ID of its confirmation -> first arrival."""
        found: dict[str, dict[str, float]] = {}
        with self.lock:
            for at, subject, message_id in self.received:
                if subject.startswith("Order ") and subject.endswith(" received"):
                    found.setdefault(subject.split()[1], {}).setdefault(message_id, at)
        return found

    def sent_again(self) -> int:
        """Confirmations received more than once with one Message-ID."""
        with self.lock:
            ids = [m for _, subject, m in self.received if subject.startswith("Order ")]
        return len(ids) - len(set(ids))


class Traffic:
    """Shoppers placing orders (retried with their key until 201) and readers browsing."""

    def __init__(self, base: str, token: str, product_id: int) -> None:
        self.base, self.token, self.product_id = base, token, product_id
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.answers: list[tuple[float, str, int, float]] = []  # at, kind, status, seconds
        self.orders: dict[str, tuple[int, str, float]] = {}  # key -> id, number, answered at
        self.threads = [threading.Thread(target=self.shop, daemon=True) for _ in range(3)]
        self.threads += [threading.Thread(target=self.browse, daemon=True) for _ in range(2)]

    def note(self, kind: str, status: int, seconds: float) -> None:
        with self.lock:
            self.answers.append((time.monotonic(), kind, status, seconds))

    def shop(self) -> None:
        auth = {"Authorization": f"Bearer {self.token}"}
        body = {
            "items": [{"product_id": self.product_id, "quantity": 1}],
            "shipping_address": ADDRESS,
        }
        with httpx.Client(base_url=self.base, timeout=10) as client:
            while not self.stopping.is_set():
                key = uuid.uuid4().hex
                while True:  # a key once sent is retried until it is answered
                    started = time.monotonic()
                    try:
                        answer = client.post(
                            f"{API}/orders", json=body, headers={**auth, "Idempotency-Key": key}
                        )
                        status = answer.status_code
                    except httpx.TransportError:
                        status = 0
                    self.note("order", status, time.monotonic() - started)
                    if status == 201:
                        with self.lock:
                            self.orders[key] = (
                                answer.json()["id"],
                                answer.json()["number"],
                                time.monotonic(),
                            )
                        break
                    time.sleep(0.3)
                time.sleep(PACE)

    def browse(self) -> None:
        paths = [f"{API}/products/{self.product_id}", f"{API}/products?page_size=20"]
        with httpx.Client(base_url=self.base, timeout=10) as client:
            turn = 0
            while not self.stopping.is_set():
                started = time.monotonic()
                try:
                    status = client.get(paths[turn % 2]).status_code
                except httpx.TransportError:
                    status = 0
                self.note("read", status, time.monotonic() - started)
                turn += 1
                time.sleep(0.02)

    def between(self, start: float, end: float, kind: str) -> list[tuple[float, str, int, float]]:
        with self.lock:
            return [a for a in self.answers if start <= a[0] <= end and a[1] == kind]

    def orders_after(self, moment: float) -> float | None:
        """Seconds from `moment` until an order was answered 201 after it."""
        with self.lock:
            later = [at for _, _, at in self.orders.values() if at >= moment]
        return min(later) - moment if later else None


def p95(samples: list[float]) -> float:
    return (
        statistics.quantiles(samples, n=20)[-1] if len(samples) >= 20 else max(samples, default=0)
    )


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def statuses(answers: list[tuple[float, str, int, float]]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for _, _, status, _ in answers:
        counts[status] = counts.get(status, 0) + 1
    return counts


class Drill:
    def __init__(self, folder: Path, cleanup: ExitStack) -> None:
        self.folder = folder
        self.pg = Postgres(folder)
        cleanup.callback(self.pg.stop)
        self.redis = RedisServer(folder)
        cleanup.callback(self.redis.stop)
        self.inbox = Inbox()
        self.smtp = Controller(self.inbox, hostname="127.0.0.1", port=free_port())
        self.smtp.start()
        cleanup.callback(self.smtp.stop)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        cleanup.callback(self.stop_processes)
        self.port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": self.pg.url,
            "REDIS_URL": self.redis.url,
            "CACHE_REDIS_URL": self.redis.url,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(self.smtp.port),
            "SECRET_KEY": "faults-secret-key-0123456789-abcdefghijkl",
            "JWT_SECRET_KEY": "faults-jwt-secret-0123456789-abcdefghijkl",
            "SCHEDULER_INTERVAL": "2",
            "LOG_LEVEL": "ERROR",
            "LOGIN_LIMIT_PER_IP": "1000 per minute",
            # Its traffic comes from one address: the API-wide limits must not refuse it.
            "RATE_LIMIT_ANON": "1000000 per minute",
            "RATE_LIMIT_USER": "1000000 per minute",
        }
        flask = [str(BIN / "flask"), "--app", "wsgi"]
        subprocess.run(
            [*flask, "db", "upgrade"], env=self.env, cwd=ROOT, check=True, capture_output=True
        )
        subprocess.run([*flask, "seed"], env=self.env, cwd=ROOT, check=True, capture_output=True)
        self.start("web")
        self.start("worker")
        self.start("scheduler")
        self.base = f"http://127.0.0.1:{self.port}"
        assert (
            wait(lambda: httpx.get(f"{self.base}/health/ready").status_code == 200, 30) is not None
        )
        admin = self.login("admin@example.com", "admin-pass-123")
        product = httpx.post(
            f"{self.base}{API}/products",
            headers={"Authorization": f"Bearer {admin}"},
            json={
                "sku": "FAULTS-1",
                "name": "Fault-tolerant mug",
                "price": "12.00",
                "stock": 1_000_000,
            },
        )
        assert product.status_code == 201, product.text
        self.traffic = Traffic(
            self.base, self.login("customer@example.com", "customer-pass-123"), product.json()["id"]
        )
        self.redis_client = Redis.from_url(self.redis.url, socket_timeout=1)

    def login(self, email: str, password: str) -> str:
        answer = httpx.post(
            f"{self.base}{API}/auth/login", json={"email": email, "password": password}
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def start(self, name: str) -> None:
        command = {
            "web": [
                str(BIN / "gunicorn"),
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{self.port}",
                "wsgi:app",
            ],
            "worker": [str(BIN / "python"), "worker.py"],
            "scheduler": [str(BIN / "python"), "worker.py", "--scheduler"],
        }[name]
        self.processes[name] = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / f"{name}.log", "ab"),  # noqa: SIM115
        )

    def web_workers(self) -> list[int]:
        master = self.processes["web"].pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return [int(pid) for pid in children]

    def ready_status(self) -> int:
        try:
            return httpx.get(f"{self.base}/health/ready", timeout=5).status_code
        except httpx.TransportError:
            return 0

    def settle(self) -> None:
        """Wait until the store answers orders again before the next fault."""
        now = time.monotonic()
        wait(lambda: self.traffic.orders_after(now) is not None, 60)
        time.sleep(3)

    def stop_processes(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    # The faults. Each returns (passed, figures).

    def postgres_crash(self) -> tuple[bool, str]:
        began = time.monotonic()
        self.pg.crash()
        time.sleep(10)
        self.pg.start()
        back = time.monotonic()
        recovered = wait(lambda: self.traffic.orders_after(back) is not None, 60)
        answers = self.traffic.between(began, time.monotonic(), "order")
        answers += self.traffic.between(began, time.monotonic(), "read")
        counts = statuses(answers)
        passed = counts.get(500, 0) == 0 and recovered is not None and recovered < 15
        return passed, (
            f"down 10 s; answers 500: {counts.get(500, 0)}, 503: {counts.get(503, 0)}; "
            f"orders again {seconds(recovered)} after it was back"
        )

    def redis_hang(self) -> tuple[bool, str]:
        began = time.monotonic()
        base = p95([a[3] for a in self.traffic.between(began - 10, began, "read")])
        self.redis.signal(signal.SIGSTOP)
        time.sleep(10)
        ready = self.ready_status()
        time.sleep(10)
        self.redis.signal(signal.SIGCONT)
        back = time.monotonic()
        during = self.traffic.between(began, back, "read")
        hung = p95([a[3] for a in during])
        budget = 2 * base + 0.5
        counts = statuses(during + self.traffic.between(began, back, "order"))
        mailed, late = self.emailed(began, back)
        passed = hung <= budget and ready == 503 and counts.get(500, 0) == 0 and mailed
        return passed, (
            f"hung 20 s; read p95 {hung * 1000:.0f} ms (baseline {base * 1000:.0f} ms, budget "
            f"{budget * 1000:.0f}); /health/ready {ready}; answers 500: {counts.get(500, 0)}; "
            f"{late}"
        )

    def redis_killed(self, *, keep_data: bool) -> tuple[bool, str]:
        """Redis killed; back 5 s later from its AOF, or at once with its data gone (every
        queued job and the schedule lost: the jobs are relayed again from the outbox once
        their lease is over, hence the longer budget and the orders of the 5 s before)."""
        schedule = self.redis_client.zcard("rq:scheduler:scheduled_jobs")
        began = time.monotonic()
        self.redis.kill()
        if keep_data:
            time.sleep(5)
        else:
            shutil.rmtree(self.folder / "appendonlydir", ignore_errors=True)
        self.redis.start()
        back = time.monotonic()
        registered = wait(
            lambda: self.redis_client.zcard("rq:scheduler:scheduled_jobs") >= schedule, 60
        )
        recovered = wait(lambda: self.traffic.orders_after(back) is not None, 60)
        counts = statuses(self.traffic.between(began, time.monotonic(), "order"))
        mailed, late = self.emailed(began, back) if keep_data else self.emailed(began - 5, back, 45)
        passed = registered is not None and recovered is not None and counts.get(500, 0) == 0
        return passed and mailed, (
            f"{'down 5 s, back from its AOF' if keep_data else 'restarted empty'}; {schedule} "
            f"periodic jobs registered again after {seconds(registered)}; answers 500: "
            f"{counts.get(500, 0)}; {late}"
        )

    def web_worker_kill(self) -> tuple[bool, str]:
        began = time.monotonic()
        victim = self.web_workers()[0]
        os.kill(victim, signal.SIGKILL)
        time.sleep(5)
        recovered = self.traffic.orders_after(began)
        counts = statuses(self.traffic.between(began, time.monotonic(), "order"))
        passed = recovered is not None and counts.get(500, 0) == 0
        return passed, (
            f"worker {victim} killed; orders answered again after "
            f"{seconds(recovered)}; answers 500: "
            f"{counts.get(500, 0)}, failed connections retried: {counts.get(0, 0)}"
        )

    def rq_worker_kill(self) -> tuple[bool, str]:
        began = time.monotonic()
        os.killpg(self.processes["worker"].pid, signal.SIGKILL)
        self.processes["worker"].wait()
        time.sleep(5)
        self.start("worker")
        back = time.monotonic()
        mailed, late = self.emailed(began, back)
        return mailed, f"killed for 5 s, then restarted; {late}"

    def hand_over_lost(self) -> tuple[bool, str]:
        began = time.monotonic()
        self.redis.signal(signal.SIGSTOP)
        time.sleep(0.25)  # orders commit; their hand-overs hang on Redis (for 0.5 s at most)
        for victim in self.web_workers():
            os.kill(victim, signal.SIGKILL)
        time.sleep(6)
        self.redis.signal(signal.SIGCONT)
        back = time.monotonic()
        # A hand-over cut short is sent again once its lease (outbox.HAND_OVER_LEASE) is over.
        mailed, late = self.emailed(began, back, 45)
        return mailed, f"every web worker killed 0.25 s into a 6 s Redis stop; {late}"

    def emailed(self, began: float, back: float, budget: float = 30) -> tuple[bool, str]:
        """Whether the confirmations of the orders answered during a fault all went out, the
        first within FIRST_EMAIL_BUDGET and the last within `budget` seconds of its end (the
        rest of that is the worker draining the backlog)."""
        with self.traffic.lock:
            numbers = [n for _, n, at in self.traffic.orders.values() if began <= at <= back]
        if not numbers:
            return True, "no order answered during the fault"
        wait(lambda: all(n in self.inbox.confirmations() for n in numbers), budget + 30)
        sent = self.inbox.confirmations()
        missing = [n for n in numbers if n not in sent]
        if missing:
            return False, f"{len(missing)} of {len(numbers)} orders of the fault not emailed"
        first = max(0.0, min(min(sent[n].values()) for n in numbers) - back)
        last = max(0.0, max(max(sent[n].values()) for n in numbers) - back)
        return first <= FIRST_EMAIL_BUDGET and last <= budget, (
            f"its {len(numbers)} orders emailed from {first:.1f} s to {last:.1f} s after it "
            f"ended (budget {FIRST_EMAIL_BUDGET:.0f} s and {budget:.0f} s)"
        )

    def final(self) -> tuple[bool, str]:
        self.traffic.stopping.set()
        for thread in self.traffic.threads:
            thread.join(timeout=120)
        with self.traffic.lock:
            answered = {order_id: number for order_id, number, _ in self.traffic.orders.values()}
        with psycopg2.connect(self.pg.url) as connection:
            cursor = connection.cursor()
            cursor.execute("SELECT id FROM orders")
            stored = {row[0] for row in cursor.fetchall()}
        wait(lambda: all(n in self.inbox.confirmations() for n in answered.values()), 90)
        sent = self.inbox.confirmations()
        lost = len(set(answered) - stored)
        unanswered = len(stored - set(answered))  # committed, its client never told: a duplicate
        missing = sum(1 for n in answered.values() if n not in sent)
        doubled = sum(1 for n in answered.values() if len(sent.get(n, {})) > 1)
        passed = lost == unanswered == missing == doubled == 0
        return passed, (
            f"{len(answered)} orders answered 201, {len(stored)} stored; lost {lost}, "
            f"duplicated {unanswered}; emailed once {len(answered) - missing - doubled}, "
            f"not emailed {missing}, emailed twice {doubled} (sent again with the same "
            f"Message-ID: {self.inbox.sent_again()})"
        )


def keep_logs_of_a_failure(folder: Path, results: list[bool]) -> None:
    if results and all(results):
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"the processes' logs are kept in {folder}", file=sys.stderr)


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="shop-faults-"))
    results: list[bool] = []
    with ExitStack() as cleanup:
        cleanup.callback(keep_logs_of_a_failure, folder, results)
        drill = Drill(folder, cleanup)
        for thread in drill.traffic.threads:
            thread.start()
        cleanup.callback(drill.traffic.stopping.set)
        time.sleep(10)  # the baseline
        faults = [
            ("postgres crash", drill.postgres_crash),
            ("redis hang", drill.redis_hang),
            ("redis restart", partial(drill.redis_killed, keep_data=True)),
            ("redis data lost", partial(drill.redis_killed, keep_data=False)),
            ("web worker kill", drill.web_worker_kill),
            ("rq worker kill", drill.rq_worker_kill),
            ("hand-over lost", drill.hand_over_lost),
        ]
        for name, fault in faults:
            passed, figures = fault()
            results.append(passed)
            print(f"{'PASS' if passed else 'FAIL'} {name}: {figures}", flush=True)
            drill.settle()
        passed, figures = drill.final()
        results.append(passed)
        print(f"{'PASS' if passed else 'FAIL'} every order: {figures}", flush=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
