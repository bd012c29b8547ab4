"""The multi-host test bed (issue 22): shop on several "hosts" made of Linux network namespaces
on one machine, joined by a bridge, with real components only.

    host 10.231.0.1 (the clients) -- bridge shop-br0 --+-- shop-lb      .10  HAProxy :80
                                                       +-- shop-app1    .11  web, worker, realtime
                                                       +-- shop-app2    .12  the same
                                                       +-- shop-sched   .20  rq-scheduler
                                                       +-- shop-db      .30  PostgreSQL primary
                                                       +-- shop-replica .31  streaming replica
                                                       +-- shop-redis   .40  Redis
                                                       +-- shop-mail    .50  SMTP sink :2525

Everything lives in one temporary folder (/tmp/shop-multihost-*) and is torn down when the
`Bed` context ends, whatever the reason (processes killed, namespaces, bridge and folder
deleted); a bed left over by a crashed run is cleaned when the next one starts. Only one bed
runs at a time (a lock in /run). Needs root, iproute2, PostgreSQL's binaries, redis-server;
installs Debian's haproxy when it is missing.

`python deploy/multihost/bed.py` (`make multihost`) starts the bed and keeps it until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv/bin"
HERE = Path(__file__).resolve().parent
PREFIX = "shop-"  # every namespace, and the bridge, of the bed
BRIDGE = "shop-br0"
SUBNET = "10.231.0"
CLIENT = f"{SUBNET}.1"  # the host's own address on the bridge: where the clients run
HOSTS = {
    "lb": 10,
    "app1": 11,
    "app2": 12,
    "app0": 13,  # the one big app host of the throughput comparison (throughput.py only)
    "sched": 20,
    "db": 30,
    "replica": 31,
    "redis": 40,
    "mail": 50,
}
WEB_PORT, REALTIME_PORT, SMTP_PORT = 8000, 5001, 2525
LOCK = Path("/run/shop-multihost.lock")
CGROUP = Path("/sys/fs/cgroup/cpu")  # cgroup v1 cpu controller (cpu.cfs_quota_us)


def address(host: str) -> str:
    return f"{SUBNET}.{HOSTS[host]}"


def run(*command: Any, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], check=check, capture_output=True, text=True)


def wait(predicate: Callable[[], bool], timeout: float, step: float = 0.2) -> float | None:
    """Seconds until `predicate` held, or None after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(Exception):
            if predicate():
                return time.monotonic() - started
        time.sleep(step)
    return None


def namespaces() -> list[str]:
    listed = run("ip", "netns", "list", check=False).stdout.split("\n")
    return [line.split()[0] for line in listed if line.startswith(PREFIX)]


def kill_namespace(name: str) -> None:
    """kill -9 every process of a host: its "machine" dies."""
    for pid in run("ip", "netns", "pids", name, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def clean_leftovers() -> None:
    """What a crashed run left: processes in the bed's namespaces, the namespaces, the bridge,
    CPU cgroups and temporary folders (called with the lock held, so no bed is running)."""
    for name in namespaces():
        kill_namespace(name)
    for name in namespaces():
        wait(lambda n=name: not run("ip", "netns", "pids", n, check=False).stdout.split(), 10)
        run("ip", "netns", "del", name, check=False)
    run("ip", "link", "del", BRIDGE, check=False)
    for group in CGROUP.glob(f"{PREFIX}*"):
        with contextlib.suppress(OSError):
            group.rmdir()
    for folder in glob.glob(f"{tempfile.gettempdir()}/shop-multihost-*"):
        shutil.rmtree(folder, ignore_errors=True)


def ensure_haproxy() -> None:
    if shutil.which("haproxy"):
        return
    print("installing haproxy (apt-get)...", file=sys.stderr, flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "haproxy"], check=True)
    # Debian starts its own haproxy service on install: the bed runs its own.
    subprocess.run(["systemctl", "disable", "--now", "haproxy"], check=False, capture_output=True)


class Bed:
    """The bed; `with Bed(...) as bed:` starts it, leaving the block stops all of it."""

    def __init__(
        self,
        app_hosts: tuple[str, ...] = ("app1", "app2"),
        web_workers: int = 2,
        cpu_shares: dict[str, float] | None = None,
        log_level: str = "WARNING",
    ) -> None:
        self.app_hosts, self.web_workers = app_hosts, web_workers
        self.cpu_shares = cpu_shares or {}  # host -> cores (cgroup quota), for throughput.py
        self.log_level = log_level
        self.cleanup = contextlib.ExitStack()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.folder = Path("/nonexistent")
        self.keep_logs = False

    # lifecycle

    def __enter__(self) -> Bed:
        if os.geteuid() != 0:
            raise SystemExit("the bed needs root (network namespaces)")
        ensure_haproxy()
        lock = open(LOCK, "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another bed is running ({LOCK} is locked)") from None
        self.cleanup.callback(lock.close)
        clean_leftovers()
        self.cleanup.callback(clean_leftovers)
        self.folder = Path(tempfile.mkdtemp(prefix="shop-multihost-"))
        self.folder.chmod(0o755)  # the postgres user reaches its clusters inside
        self.cleanup.callback(self._keep_logs_of_a_failure)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally runs on TERM too
        try:
            self._network()
            self._postgres()
            self._redis()
            self._mail()
            self._migrate()
            for host in self.app_hosts:
                self.start_app_host(host)
            self.start("sched", "scheduler", [BIN / "python", "worker.py", "--scheduler"])
            self._haproxy()
            self.wait_ready()
        except BaseException:
            self.keep_logs = True
            self.cleanup.close()
            raise
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        self.keep_logs = self.keep_logs or kind is not None
        self.stop_processes()
        self.cleanup.close()

    def _keep_logs_of_a_failure(self) -> None:
        if self.keep_logs:
            kept = Path(tempfile.gettempdir()) / "shop-bed-last-failure"
            shutil.rmtree(kept, ignore_errors=True)
            kept.mkdir()
            for log in self.folder.glob("*.log"):
                shutil.copy(log, kept)
            for log in self.folder.glob("pg-*/log"):
                shutil.copy(log, kept / f"{log.parent.name}.log")
            print(f"the bed's logs are kept in {kept}", file=sys.stderr)
        shutil.rmtree(self.folder, ignore_errors=True)

    # the network

    def _network(self) -> None:
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{CLIENT}/24", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        hosts = {"lb", "sched", "db", "replica", "redis", "mail", *self.app_hosts}
        for host in sorted(hosts, key=HOSTS.__getitem__):
            name, veth = f"{PREFIX}{host}", f"vs-{host}"
            run("ip", "netns", "add", name)
            run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
            run("ip", "link", "set", veth, "master", BRIDGE, "up")
            inside = ["ip", "netns", "exec", name, "ip"]
            run(*inside, "addr", "add", f"{address(host)}/24", "dev", "eth0")
            run(*inside, "link", "set", "eth0", "up")
            run(*inside, "link", "set", "lo", "up")

    # processes

    def start(
        self, host: str, name: str, command: list[Any], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A process on `host` (in its namespace), in a session of its own, logging to
        <folder>/<name>.log."""
        prefix: list[Any] = ["ip", "netns", "exec", f"{PREFIX}{host}"]
        process = subprocess.Popen(
            [str(c) for c in [*prefix, *command]],
            cwd=ROOT,
            env=env or self.env(host),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / f"{name}.log", "ab"),  # noqa: SIM115
            preexec_fn=self._into_cgroup(host),
        )
        self.processes[name] = process
        return process

    def _into_cgroup(self, host: str) -> Callable[[], None] | None:
        if host not in self.cpu_shares:
            return None
        group = CGROUP / f"{PREFIX}{host}"
        if not group.exists():
            group.mkdir()
            period = 100_000
            (group / "cpu.cfs_period_us").write_text(str(period))
            (group / "cpu.cfs_quota_us").write_text(str(int(period * self.cpu_shares[host])))

        def enter() -> None:
            (group / "cgroup.procs").write_text(str(os.getpid()))

        return enter

    def env(self, host: str) -> dict[str, str]:
        redis = f"redis://{address('redis')}:6379"
        metrics = self.folder / f"metrics-{host}"  # prometheus_client's, per host
        metrics.mkdir(exist_ok=True)
        return {
            "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "DATABASE_URL": f"postgresql://postgres@{address('db')}:5432/shop",
            # Read routing (issue 22, part 2): the app sends staleness-tolerant reads here.
            "DATABASE_REPLICA_URL": f"postgresql://postgres@{address('replica')}:5432/shop",
            "REDIS_URL": f"{redis}/0",
            "CACHE_REDIS_URL": f"{redis}/1",
            "MAIL_SERVER": address("mail"),
            "MAIL_PORT": str(SMTP_PORT),
            "SECRET_KEY": "multihost-secret-key-0123456789-abcdefghijkl",
            "JWT_SECRET_KEY": "multihost-jwt-secret-0123456789-abcdefghijkl",
            "TRUSTED_PROXIES": "1",  # HAProxy's X-Forwarded-For
            "REALTIME_BIND": f"{address(host)}:{REALTIME_PORT}" if host in HOSTS else "",
            "SCHEDULER_INTERVAL": "2",
            "LOG_LEVEL": self.log_level,
            "LOG_JSON": "true",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
            # All the clients come from one address (10.231.0.1): the per-address limits
            # would refuse them.
            "LOGIN_LIMIT_PER_IP": "100000 per minute",
            "LOGIN_LIMIT_PER_ACCOUNT": "100000 per minute",
            "RATE_LIMIT_ANON": "10000000 per minute",
            "RATE_LIMIT_USER": "10000000 per minute",
        }

    def start_app_host(self, host: str) -> None:
        """An app host's three processes: gunicorn (wsgi:app, gunicorn.conf.py), an RQ worker
        and realtime.py."""
        bind = f"{address(host)}:{WEB_PORT}"
        workers = str(self.web_workers)
        gunicorn = [BIN / "gunicorn", "-c", "gunicorn.conf.py", "-w", workers, "-b", bind]
        self.start(host, f"{host}-web", [*gunicorn, "wsgi:app"])
        self.start(host, f"{host}-worker", [BIN / "python", "worker.py"])
        self.start(host, f"{host}-realtime", [BIN / "python", "realtime.py"])

    def kill_host(self, host: str) -> None:
        kill_namespace(f"{PREFIX}{host}")
        for name, process in self.processes.items():
            if name.startswith(f"{host}-"):
                process.wait()

    def stop_processes(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for cluster in ("pg-replica", "pg-primary"):
            if (self.folder / cluster / "postmaster.pid").exists():
                self.postgres(
                    "db",
                    "pg_ctl",
                    "-D",
                    self.folder / cluster,
                    "-m",
                    "immediate",
                    "stop",
                    check=False,
                )

    # PostgreSQL: a primary and a streaming replica

    def postgres(
        self, host: str, tool: str, *args: Any, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """A PostgreSQL tool run as the postgres OS user on `host`."""
        pg_bin = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
        namespace = ["ip", "netns", "exec", f"{PREFIX}{host}"]
        return run(*namespace, "runuser", "-u", "postgres", "--", pg_bin / tool, *args, check=check)

    def _pg_start(self, host: str, data: Path) -> None:
        sockets = data.with_name(f"{data.name}-run")  # not in the data: a base backup copies it
        sockets.mkdir(exist_ok=True)
        shutil.chown(sockets, "postgres", "postgres")
        options = f"-c listen_addresses={address(host)} -p 5432 -k {sockets}"
        self.postgres(host, "pg_ctl", "-D", data, "-l", data / "log", "-o", options, "-w", "start")

    def sql(self, host: str, query: str, database: str = "shop") -> list[tuple[Any, ...]]:
        connection = psycopg2.connect(f"postgresql://postgres@{address(host)}:5432/{database}")
        connection.autocommit = True
        try:
            cursor = connection.cursor()
            cursor.execute(query)
            return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def _postgres(self) -> None:
        primary, replica = self.folder / "pg-primary", self.folder / "pg-replica"
        for data in (primary, replica):
            data.mkdir(mode=0o700)
            shutil.chown(data, "postgres", "postgres")
        self.postgres("db", "initdb", "-D", primary, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with open(primary / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {SUBNET}.0/24 trust\n")
            hba.write(f"host replication all {SUBNET}.0/24 trust\n")
        self._pg_start("db", primary)
        self.sql("db", "CREATE DATABASE shop", database="postgres")
        self.postgres(
            "replica",
            "pg_basebackup",
            "-h",
            address("db"),
            "-U",
            "postgres",
            "-D",
            replica,
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        )
        self._pg_start("replica", replica)
        streaming = wait(lambda: self.replication() == [(address("replica"), "streaming")], 30)
        if streaming is None:
            raise RuntimeError(f"the replica does not stream: {self.replication()}")
        if self.sql("replica", "SELECT pg_is_in_recovery()") != [(True,)]:
            raise RuntimeError("the replica is not in recovery")

    def replication(self) -> list[tuple[Any, ...]]:
        """pg_stat_replication on the primary: (client address, state) of each standby."""
        rows = self.sql("db", "SELECT client_addr::text, state FROM pg_stat_replication")
        return [(str(a).split("/")[0], state) for a, state in rows]

    def replica_lag_bytes(self) -> int:
        rows = self.sql(
            "db",
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication",
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else -1

    # Redis, mail, the schema

    def _redis(self) -> None:
        self.start(
            "redis",
            "redis",
            [
                "redis-server",
                "--bind",
                address("redis"),
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
        )
        if wait(lambda: self._tcp(address("redis"), 6379), 10) is None:
            raise RuntimeError("Redis did not start")

    def _mail(self) -> None:
        self.mailbox = self.folder / "mail.jsonl"
        self.mailbox.touch()
        sink = [BIN / "python", HERE / "smtp_sink.py", address("mail"), SMTP_PORT, self.mailbox]
        self.start("mail", "mail", sink)
        if wait(lambda: self._tcp(address("mail"), SMTP_PORT), 20) is None:
            raise RuntimeError("the SMTP sink did not start")

    def mails(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.mailbox.read_text().splitlines() if line]

    def _migrate(self) -> None:
        """As `make run` does: db upgrade, then the demo seed (accounts, catalog), run once
        from the scheduler host."""
        for step in (["db", "upgrade"], ["seed"]):
            namespace = ["ip", "netns", "exec", f"{PREFIX}sched"]
            done = subprocess.run(
                [*namespace, str(BIN / "flask"), "--app", "wsgi", *step],
                cwd=ROOT,
                env=self.env("sched"),
                capture_output=True,
                text=True,
            )
            if done.returncode:
                raise RuntimeError(f"flask {' '.join(step)} failed: {done.stderr[-2000:]}")

    @staticmethod
    def _tcp(host: str, port: int) -> bool:
        with socket.create_connection((host, port), timeout=1):
            return True

    # HAProxy

    def _haproxy(self, extra: str = "") -> None:
        web, realtime = [], []
        for host in self.app_hosts:
            if host == "app0":
                continue
            web.append(f"    server {host} {address(host)}:{WEB_PORT} check")
            realtime.append(
                f"    server {host} {address(host)}:{REALTIME_PORT} check "
                "on-marked-down shutdown-sessions"
            )
        template = string.Template((HERE / "haproxy.cfg.in").read_text())
        config = template.substitute(
            folder=self.folder,
            lb=address("lb"),
            web_servers="\n".join(web),
            realtime_servers="\n".join(realtime),
            extra=extra,
        )
        (self.folder / "haproxy.cfg").write_text(config)
        run("haproxy", "-c", "-f", self.folder / "haproxy.cfg")
        self.start("lb", "haproxy", ["haproxy", "-db", "-f", self.folder / "haproxy.cfg"])
        if wait(lambda: (self.folder / "haproxy.sock").exists(), 10) is None:
            raise RuntimeError("HAProxy did not start")

    def haproxy(self, command: str) -> str:
        """A command on HAProxy's stats socket (e.g. `show stat`)."""
        with socket.socket(socket.AF_UNIX) as channel:
            channel.settimeout(5)
            channel.connect(str(self.folder / "haproxy.sock"))
            channel.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := channel.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[tuple[str, str], dict[str, str]]:
        """(backend, server) -> its `show stat` row (status UP/DOWN, stot, ...)."""
        lines = self.haproxy("show stat").splitlines()
        names = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(names, line.split(","), strict=False)) for line in lines[1:] if line]
        return {
            (r["pxname"], r["svname"]): r
            for r in rows
            if r["svname"] not in ("FRONTEND", "BACKEND")
        }

    def status(self, host: str) -> tuple[str, str]:
        """HAProxy's view of an app host: (web status, realtime status)."""
        servers = self.servers()
        return servers[("web", host)]["status"], servers[("realtime", host)]["status"]

    def wait_ready(self, timeout: float = 90) -> None:
        hosts = [h for h in self.app_hosts if h != "app0"]
        if wait(lambda: all(self.status(h) == ("UP", "UP") for h in hosts), timeout) is None:
            raise RuntimeError(f"the app hosts are not up in HAProxy: {self.servers()}")

    @property
    def base(self) -> str:
        return f"http://{address('lb')}"


def main() -> int:
    with Bed() as bed:
        print(
            f"the bed is up: {bed.base} (HAProxy), WebSocket ws://{address('lb')}/api/v1/ws/"
            f"notifications; stats: echo 'show stat' | socat - {bed.folder}/haproxy.sock; "
            f"replication {bed.replication()}; Ctrl-C stops it all",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


@contextlib.contextmanager
def interrupted_cleanly() -> Iterator[None]:
    """Ctrl-C ends the run with the bed torn down, and no traceback."""
    try:
        yield
    except KeyboardInterrupt:
        print("interrupted: the bed is stopped", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    with interrupted_cleanly():
        sys.exit(main())
