"""What every answer gets on its way out: compression (flask-compress: brotli or gzip, as the
client's Accept-Encoding prefers, for JSON of 1 KiB or more), the security headers, and
`credentialed()`, whether a request says who its caller is (then no cache may store the answer).

Security headers are one after_request hook rather than flask-talisman: talisman would redirect
to HTTPS and set its CSP on every answer by default (here: HTML pages only, with the hashes of
their own inline scripts), and it has no rule for `no-store` on authenticated answers, which is
the one that matters most to a JSON API."""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any

from flask import Flask, Request, Response, current_app, g, request
from flask_compress.flask_compress import _choose_algorithm

from shop.config import PRODUCTION
from shop.extensions import compress

# Headers that name the caller (a token, a guest's cart, a guest's order key; `?key=` too).
CREDENTIALS = ("Authorization", "X-Cart-Token", "X-Order-Key")
COMPRESSED_TYPES = ["application/json", "application/problem+json"]
ALGORITHMS = ["br", "gzip"]  # brotli first when the client takes both equally
MIN_COMPRESSED_BYTES = 1024
HSTS = "max-age=31536000; includeSubDomains"
# The HTML pages (Swagger UI at /docs, ReDoc at /redoc) load their scripts and styles from
# /docs/assets; Swagger UI's configuration is an inline script (allowed by its hash), both draw
# inline styles and data: images, ReDoc runs a web worker from a blob: URL.
CSP = (
    "default-src 'self'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def credentialed() -> bool:
    """Whether the request carries credentials: its answer is for that caller alone."""
    headers = request.headers
    return any(name in headers for name in CREDENTIALS) or "key" in request.args


def encoded_etag(tag: str, size: int) -> str:
    """The ETag an answer of `size` JSON bytes tagged `tag` leaves with for this request:
    flask-compress appends the encoding it chose (`"t:br"`), so each representation has its
    own strong tag. Used to answer a 304 without building (or compressing) the body."""
    if size < current_app.config["COMPRESS_MIN_SIZE"]:
        return tag
    algorithms = tuple(current_app.config["COMPRESS_ALGORITHM"])
    algorithm = _choose_algorithm(algorithms, request.headers.get("Accept-Encoding", ""))
    return f"{tag}:{algorithm}" if algorithm else tag


class CompressedBodies:
    """flask-compress's cache of compressed bodies, for answers with a strong ETag from
    shop.caching (the tag names the body, so an entry is never stale): a hot catalog page is
    compressed once per encoding and process, not once per request. Least recently used
    entries go past `size`; other answers (no tag) are compressed each time."""

    def __init__(self, size: int = 256, max_bytes: int = 256 * 1024) -> None:
        self.size, self.max_bytes = size, max_bytes
        self.entries: OrderedDict[str, bytes] = OrderedDict()
        self.lock = threading.Lock()  # threaded workers share it

    def get(self, key: str) -> bytes | None:
        with self.lock:
            body = self.entries.get(key)
            if body is not None:
                self.entries.move_to_end(key)
            return body

    def set(self, key: str, value: bytes) -> None:
        if key.endswith(";") or len(value) > self.max_bytes:  # untagged, or too large
            return
        with self.lock:
            self.entries[key] = value
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)


def _compress(response: Response) -> Response:
    """flask-compress's hook, for the answers it could compress; the others (no
    Accept-Encoding, not a 2xx, not JSON, under 1 KiB or streamed) only get their Vary, at a
    fraction of its cost (it parses Accept-Encoding and checks each rule on every answer)."""
    if (
        "HTTP_ACCEPT_ENCODING" not in request.environ
        or not 200 <= response.status_code < 300
        or response.mimetype not in compress.compress_mimetypes_set
        or (response.content_length or 0) < current_app.config["COMPRESS_MIN_SIZE"]
    ):
        headers = response.headers
        vary = headers.get("Vary")
        if vary is None:
            headers.add("Vary", "Accept-Encoding")
        elif "accept-encoding" not in vary.lower():
            headers["Vary"] = f"{vary}, Accept-Encoding"
        return response
    return compress.after_request(response)


def _compress_key(_request: Request) -> str:
    # The strong tag shop.caching gave this answer, if any (see CompressedBodies).
    return str(g.get("compress_key", ""))


@lru_cache(maxsize=16)
def _csp(body: bytes) -> str:
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(body)
    )
    return CSP.format(scripts=hashes)


def _secure(response: Response) -> Response:
    # A view's own (the console's CSP, a file's nosniff) stand; setdefault scans once.
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if credentialed():
        headers["Cache-Control"] = "no-store"
    if response.mimetype == "text/html" and "Content-Security-Policy" not in headers:
        streamed = response.is_streamed or response.direct_passthrough  # not read here
        headers.add("Content-Security-Policy", _csp(b"" if streamed else response.get_data()))
    if current_app.config["SHOP_ENV"] == PRODUCTION:
        headers.add("Strict-Transport-Security", HSTS)
    return response


def init_app(app: Flask) -> None:
    settings: dict[str, Any] = {
        "COMPRESS_MIMETYPES": COMPRESSED_TYPES,
        "COMPRESS_ALGORITHM": ALGORITHMS,
        "COMPRESS_MIN_SIZE": MIN_COMPRESSED_BYTES,
        # A streamed answer (the CSV export) leaves as it is made, uncompressed.
        "COMPRESS_STREAMS": False,
        # shop.caching answers If-None-Match itself, before the view when it can.
        "COMPRESS_EVALUATE_CONDITIONAL_REQUEST": False,
        "COMPRESS_CACHE_KEY": _compress_key,
        "COMPRESS_CACHE_BACKEND": CompressedBodies,
    }
    for name, value in settings.items():
        app.config.setdefault(name, value)
    # Registered here (_compress), not by flask-compress; COMPRESS_REGISTER=False: none.
    register = app.config.get("COMPRESS_REGISTER", True)
    app.config["COMPRESS_REGISTER"] = False
    compress.init_app(app)
    app.config["COMPRESS_REGISTER"] = register
    if register:
        app.after_request(_compress)
    app.after_request(_secure)
