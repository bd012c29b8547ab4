"""A redis-server of a test's own, to stop (SIGSTOP), continue, kill and restart."""

import os
import signal
import socket
import subprocess
import time

from redis import Redis
from redis.exceptions import RedisError


class PrivateRedis:
    """A redis-server for one test: stopped, continued, killed and restarted at will."""

    def __init__(self, folder, *, appendonly: bool) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.folder, self.appendonly = folder, appendonly
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.clients: list[Redis] = []
        self.start()

    def client(self) -> Redis:
        """A client closed with the server (its sockets are not left to the collector)."""
        self.clients.append(Redis.from_url(self.url))
        return self.clients[-1]

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--dir", str(self.folder)]
        command += ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else []
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        with Redis.from_url(self.url, socket_timeout=1) as client:
            while True:
                try:
                    client.ping()
                    return
                except RedisError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.05)

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.process.poll() is None:
            self.resume()
            self.kill()
