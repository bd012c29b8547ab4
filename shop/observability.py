"""Request ids, JSON logs with an access line per request, and the health endpoints."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, request
from flask.views import MethodView
from marshmallow import fields
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy import text
from werkzeug.exceptions import RequestHeaderFieldsTooLarge, RequestURITooLarge

from shop.api import Blueprint
from shop.db import db
from shop.errors import problem, request_id
from shop.queues import JobIdFilter, redis_connection
from shop.schemas import BaseSchema

access_log = logging.getLogger("shop.access")
# What a request may carry (RFC 9110 asks for URLs of at least 8,000 bytes).
MAX_URL_BYTES = 8192
MAX_HEADER_BYTES = 16384


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id() if has_request_context() else None
        return True


def configure_logging(app: Flask) -> None:
    root = logging.getLogger()
    root.setLevel(app.config["LOG_LEVEL"])
    if any(getattr(h, "shop_handler", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.shop_handler = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.addFilter(JobIdFilter())
    if app.config["LOG_JSON"]:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(job_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root.addHandler(handler)


def _start() -> None:
    """Time the request, give it an id, and refuse oversized ones as problem+json (gunicorn's
    own limits are set above these: gunicorn.conf.py)."""
    g.started = time.perf_counter()
    request_id()
    environ = request.environ
    uri = environ.get("RAW_URI") or environ.get("PATH_INFO", "") + environ.get("QUERY_STRING", "")
    if len(uri) > MAX_URL_BYTES:
        raise RequestURITooLarge(f"The URL is longer than {MAX_URL_BYTES} bytes.")
    headers = sum(len(k) + len(v) for k, v in environ.items() if k.startswith("HTTP_"))
    if headers > MAX_HEADER_BYTES:
        raise RequestHeaderFieldsTooLarge(f"The headers are larger than {MAX_HEADER_BYTES} bytes.")


def _finish(response: Response) -> Response:
    response.headers["X-Request-ID"] = request_id() or ""
    if response.status_code < 300:  # flask-limiter adds it to every answer of a limited view
        response.headers.pop("Retry-After", None)
    started = g.get("started")
    if started is not None and access_log.isEnabledFor(logging.INFO):
        access_log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "remote_addr": request.remote_addr,
            },
        )
    return response


def register_request_hooks(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)


blp = Blueprint("health", __name__, description="The index, liveness and readiness")


class HealthSchema(BaseSchema):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String())


class IndexSchema(BaseSchema):
    name = fields.String(required=True)
    api = fields.String(required=True, metadata={"description": "the base path of the API"})
    docs = fields.String(required=True, metadata={"description": "Swagger UI"})
    redoc = fields.String(required=True)
    openapi = fields.String(required=True)
    health = fields.String(required=True)


@blp.route("/")
class Index(MethodView):
    @blp.response(200, IndexSchema)
    def get(self) -> dict[str, Any]:
        """Where the API and its documentation are

        Anyone (no token). The store's name and the paths of the API, its interactive
        documentation (/docs, /redoc), the OpenAPI document and the health checks; not counted
        against the API-wide rate limits."""
        return {
            "name": current_app.config["STORE_NAME"],
            "api": "/api/v1",
            "docs": "/docs",
            "redoc": "/redoc",
            "openapi": "/openapi.json",
            "health": "/health",
        }


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, Any]:
        """Liveness: the process answers

        Anyone (no token). Always `{"status": "ok"}` while the web process runs; it asks
        neither the database nor Redis (GET /health/ready does). Not rate-limited, for load
        balancers and orchestrators."""
        return {"status": "ok"}


@blp.route("/health/ready")
class Ready(MethodView):
    @blp.errors(503)
    @blp.response(200, HealthSchema)
    def get(self) -> Any:
        """Readiness: the database (and Redis, when configured) answer

        Anyone (no token). 200 with `ok` for each dependency when all answer; 503 naming the
        one that failed (`failed: <error>`) otherwise, so a load balancer stops sending
        traffic here. Not rate-limited."""
        checks: dict[str, str] = {}
        try:
            db.session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as error:
            db.session.rollback()
            checks["database"] = f"failed: {type(error).__name__}"
        connection = redis_connection()
        if connection is not None:
            try:
                connection.ping()
                checks["redis"] = "ok"
            except Exception as error:
                checks["redis"] = f"failed: {type(error).__name__}"
        failed = sorted(name for name, state in checks.items() if state != "ok")
        if failed:
            current_app.logger.warning("not ready: %s", checks)
            return problem(503, f"Not ready: {', '.join(failed)} failed.", errors=checks)
        return {"status": "ok", "checks": checks}
