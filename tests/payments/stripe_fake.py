"""A small Stripe for the tests: a local HTTP server answering the endpoints shop calls (POST
/v1/payment_intents, GET /v1/payment_intents/{id}, POST /v1/refunds) as Stripe does, idempotency
keys included, and failing on demand; and webhook payloads signed by Stripe's documented scheme
(`t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<payload>">`), written here, not taken from the library,
which does the verifying."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
WEBHOOK_SECRET = "whsec_test_shop"
TIMEOUT = 1.0  # the STRIPE_TIMEOUT of the app under test (conftest.stripe_app)
_ids = itertools.count(1)


class FakeStripe(ThreadingHTTPServer):
    """Answers each request with the next of `answers` (then normally): a status (500, 400:
    an error and nothing done), ("hang", s): no answer for s seconds and nothing done, or
    ("slow", s): done, then answered s seconds later (the caller has hung up by then)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.replies: dict[tuple[str, str], dict[str, Any]] = {}  # (path, key) -> answer
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def made(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path and r["method"] == "POST"]

    def refunded(self, intent_id: str) -> int:
        return sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent_id)

    def answer(self, method: str, path: str, params: dict[str, str], key: str | None) -> Any:
        with self.lock:
            if key and (path, key) in self.replies:
                return 200, self.replies[(path, key)]
            if method == "GET" and path.startswith("/v1/payment_intents/"):
                found = self.intents.get(path.rsplit("/", 1)[1])
                return (200, found) if found else _error(404, "resource_missing")
            if path == "/v1/payment_intents":
                intent_id = f"pi_{next(_ids)}"
                body = {
                    "id": intent_id,
                    "object": "payment_intent",
                    "amount": int(params["amount"]),
                    "amount_received": 0,
                    "currency": params["currency"],
                    "client_secret": f"{intent_id}_secret_{next(_ids)}",
                    "metadata": _nested(params, "metadata"),
                    "status": "requires_payment_method",
                }
                self.intents[intent_id] = body
            elif path == "/v1/refunds":
                refund_id = f"re_{next(_ids)}"
                body = {
                    "id": refund_id,
                    "object": "refund",
                    "amount": int(params["amount"]),
                    "currency": "usd",
                    "payment_intent": params["payment_intent"],
                    "metadata": _nested(params, "metadata"),
                    "status": "succeeded",
                }
                self.refunds[refund_id] = body
            else:
                return _error(404, "resource_missing")
            if key:
                self.replies[(path, key)] = body
            return 200, body


def _nested(params: dict[str, str], name: str) -> dict[str, str]:
    prefix = f"{name}["
    return {k[len(prefix) : -1]: v for k, v in params.items() if k.startswith(prefix)}


def _error(status: int, code: str) -> tuple[int, dict[str, Any]]:
    kind = "api_error" if status >= 500 else "invalid_request_error"
    return status, {"error": {"type": kind, "code": code, "message": f"{code} (fake)"}}


class _Handler(BaseHTTPRequestHandler):
    server: FakeStripe

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        params = dict(parse_qsl(self.rfile.read(length).decode())) if length else {}
        path = self.path.split("?", 1)[0]
        key = self.headers.get("Idempotency-Key")
        self.server.requests.append(
            {"method": self.command, "path": path, "params": params, "key": key}
        )
        planned = self.server.answers.pop(0) if self.server.answers else None
        if isinstance(planned, tuple) and planned[0] == "hang":
            time.sleep(planned[1])
            return
        if isinstance(planned, int):
            status, body = _error(planned, "planned_failure")
        else:
            status, body = self.server.answer(self.command, path, params, key)
        if isinstance(planned, tuple) and planned[0] == "slow":
            time.sleep(planned[1])
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the caller gave up waiting
            pass

    do_GET = do_POST = _serve

    def log_message(self, *args: Any) -> None:
        pass


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, at: float | None = None) -> str:
    timestamp = int(time.time() if at is None else at)
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def event(kind: str, data: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{next(_ids)}",
        "object": "event",
        "api_version": "2026-10-29.clover",
        "created": int(time.time()),
        "livemode": False,
        "type": kind,
        "data": {"object": data},
    }


def intent_event(
    kind: str, intent: dict[str, Any], *, amount: int | None = None, event_id: str | None = None
) -> dict[str, Any]:
    """payment_intent.succeeded (received `amount`, by default the intent's) or
    payment_intent.payment_failed for an intent the fake made."""
    succeeded = kind == "payment_intent.succeeded"
    received = intent["amount"] if amount is None else amount
    data = {
        **intent,
        "amount_received": received if succeeded else 0,
        "status": "succeeded" if succeeded else "requires_payment_method",
    }
    return event(kind, data, event_id)


def charge_refunded(intent: dict[str, Any], amount_refunded: int) -> dict[str, Any]:
    return event(
        "charge.refunded",
        {
            "id": f"ch_{intent['id']}",
            "object": "charge",
            "amount": intent["amount"],
            "amount_refunded": amount_refunded,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "refunded": amount_refunded == intent["amount"],
        },
    )


def post_event(client: Any, body: dict[str, Any], signature: str | None = None) -> Any:
    """POST an event to the Stripe webhook, signed with the secret unless told otherwise."""
    raw = json.dumps(body).encode()
    return client.post(
        f"{API}/payments/stripe/webhook",
        data=raw,
        content_type="application/json",
        headers={"Stripe-Signature": signature or sign(raw)},
    )
