"""gunicorn's settings for shop (read from the working directory; command-line flags win).

gunicorn answers requests it refuses itself with an HTML page. Its request-line and header
limits are therefore set above shop's own (shop.observability: MAX_URL_BYTES and
MAX_HEADER_BYTES), so that shop answers an oversized request with its 414 or 431 problem+json.
A request line of 0 means gunicorn's own cap of 1 MiB.

Metrics: every worker writes its figures to PROMETHEUS_MULTIPROC_DIR (a fresh temporary
folder when it is not set), which GET /metrics reads whole, so a scrape sees every worker
whichever one answers it. The variable is set here, before a worker imports prometheus_client
(it chooses its mode then); the folder is emptied when gunicorn starts, a dead worker's live
gauges are dropped, and a folder made here is removed when gunicorn exits.
"""

import os
import shutil
import tempfile
from pathlib import Path

_OWNED = "SHOP_METRICS_DIR_MADE_BY_GUNICORN"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="shop-metrics-")
    os.environ[_OWNED] = os.environ["PROMETHEUS_MULTIPROC_DIR"]

from prometheus_client import multiprocess  # noqa: E402  (after the variable: see above)

limit_request_line = 0
limit_request_field_size = 65536


def on_starting(server):
    """A previous run's files would add its counts to this one's."""
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    made = os.environ.get(_OWNED)
    if made and made == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(made, ignore_errors=True)
