"""A PostgreSQL primary of the tests' own with a real streaming replica of it (initdb,
pg_basebackup -R -X stream, pg_ctl), to pause, lag and stop at will.

The primary is private because the machine's cluster may not take replication connections
(its pg_hba.conf is system configuration, which tests do not change). The servers run as
the postgres OS user when the tests run as root (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine


class Unavailable(RuntimeError):
    """PostgreSQL's server programs are not installed here."""


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise Unavailable(f"{name} not found (apt-get install postgresql)")
    return found[-1]


class Server:
    """One cluster directory, started with pg_ctl on 127.0.0.1:`port`."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.data, self.log = folder / "data", folder / "server.log"
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        self.run(_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log),
                 "-w", "-t", "30", "start")  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def engine(self, database: str = "postgres") -> Engine:
        return create_engine(
            self.url.rsplit("/", 1)[0] + f"/{database}", isolation_level="AUTOCOMMIT"
        )


class Pair:
    """A primary on `port` and its streaming replica on `replica_port`, under `folder`."""

    def __init__(self, folder: Path, port: int, replica_port: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        self.primary = Server(folder / "primary", port)
        self.replica = Server(folder / "replica", replica_port)
        for server in (self.primary, self.replica):
            server.folder.mkdir()
            if os.geteuid() == 0:
                shutil.chown(server.folder, "postgres", "postgres")

    def start(self) -> None:
        primary = self.primary
        primary.run(_bin("initdb"), "-D", str(primary.data), "-U", "postgres", "--auth=trust",
                    "--no-sync")  # fmt: skip
        with open(primary.data / "postgresql.auto.conf", "a") as conf:
            conf.write("fsync = off\nwal_level = replica\nmax_wal_senders = 4\n")
        with open(primary.data / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        primary.start()
        source = ["-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"]
        self.replica.run(_bin("pg_basebackup"), *source, "-D", str(self.replica.data), "-R",
                         "-X", "stream")  # fmt: skip
        self.replica.start()

    def stop(self) -> None:
        for server in (self.replica, self.primary):
            with contextlib.suppress(subprocess.CalledProcessError):
                server.stop()


def replica_caught_up(primary: Engine, replica: Engine, timeout: float = 10.0) -> None:
    """Wait until the replica has replayed everything the primary has flushed."""
    with primary.connect() as connection:
        target = connection.scalar(text("SELECT pg_current_wal_flush_lsn()"))
    deadline = time.monotonic() + timeout
    with replica.connect() as connection:
        while not connection.scalar(
            text("SELECT pg_last_wal_replay_lsn() >= CAST(:target AS pg_lsn)"), {"target": target}
        ):
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.02)
