"""`python realtime.py`: the WebSocket service (`/api/v1/ws/notifications`, and `/health`),
a process of its own beside web, worker and scheduler; run as many as needed behind the load
balancer, which sends `/api/v1/ws/` to them. It listens on REALTIME_BIND (127.0.0.1:5001),
where it also answers `GET /metrics` with its own figures (open connections among them)."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import sys

from websockets.asyncio.server import serve

from shop import create_app
from shop.events.live import Hub, http

log = logging.getLogger("shop.realtime")
PING_EVERY = 20.0  # seconds: keeps idle connections open through proxies


def _allow_many_connections() -> None:
    """Each connection is a file descriptor: raise the soft limit (often 1,024) to the hard."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def main() -> int:
    _allow_many_connections()
    app = create_app()
    # websockets logs every connection opened and closed at INFO: thousands of lines a minute.
    logging.getLogger("websockets").setLevel(max(logging.WARNING, logging.getLogger().level))
    host, _, port = app.config["REALTIME_BIND"].rpartition(":")
    hub = Hub(app)
    async with serve(
        hub.serve,
        host or "127.0.0.1",
        int(port),
        process_request=http(app),
        ping_interval=PING_EVERY,
        ping_timeout=PING_EVERY,
        max_size=64 * 1024,  # the client only ever sends its auth message
    ) as server:
        pump = asyncio.create_task(hub.run())
        stop = asyncio.get_running_loop().create_future()
        for number in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(number, stop.set_result, None)
        log.info("realtime listening on %s", app.config["REALTIME_BIND"])
        await asyncio.wait([pump, stop], return_when=asyncio.FIRST_COMPLETED)
        pump.cancel()
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
