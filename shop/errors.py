"""Domain exceptions, request ids, and `problem()`, the one problem+json body of every error."""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus
from typing import Any

from flask import Response, current_app, g, has_request_context, request
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
_MAX_REQUEST_ID = 128


class ShopError(Exception):
    """A failure with an HTTP status; services raise these, the handler renders them."""

    status = 500

    def __init__(self, detail: str, *, errors: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class BadRequest(ShopError):
    status = 400


class Unauthorized(ShopError):
    status = 401


class Forbidden(ShopError):
    status = 403


class NotFound(ShopError):
    status = 404


class Conflict(ShopError):
    status = 409


class Unprocessable(ShopError):
    status = 422


class TooLarge(ShopError):
    status = 413


class Unavailable(ShopError):
    """A service shop depends on (the media storage, Stripe) did not answer: retry shortly."""

    status = 503


def request_id() -> str | None:
    """The id of the current request: the client's X-Request-ID when sane, else a new one."""
    if not has_request_context():
        return None
    if "request_id" not in g:
        sent = request.headers.get("X-Request-ID", "")
        ok = 0 < len(sent) <= _MAX_REQUEST_ID and sent.isascii() and sent.isprintable()
        g.request_id = sent if ok else uuid.uuid4().hex
    return str(g.request_id)


def problem(
    status: int,
    detail: str,
    *,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "request_id": request_id(),
    }
    if errors:
        body["errors"] = errors
    response = current_app.response_class(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers.extend(headers or {})
    return response


def _flatten_locations(messages: dict[str, Any]) -> dict[str, Any]:
    # webargs nests messages by location ({"json": {...}}); clients want field -> messages.
    flat: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            flat.update(fields)
        else:
            flat[location] = fields
    return flat


def render_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = _flatten_locations(data["messages"]) if "messages" in data else data.get("errors")
    detail = data.get("message") or error.description or HTTPStatus(status).phrase
    if status == 422 and errors:
        detail = "The request did not validate."
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    return problem(status, detail, errors=errors, headers=headers)
