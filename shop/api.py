"""The HTTP layer's glue: the flask-smorest Api that renders every error as problem+json, the
Blueprint with role gates, uploads and Idempotency-Key, and the error handlers.

Long because the Blueprint's decorators (roles, arguments and uploads, idempotency, answers)
are one class that every route module uses, and the OpenAPI plugins document what they do."""

from __future__ import annotations

import http
import importlib.util
import logging
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import flask
import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from flask import Response, current_app, request
from flask_jwt_extended import current_user, get_current_user, verify_jwt_in_request
from flask_smorest.utils import get_appcontext, prepare_response
from marshmallow import fields, validate
from sqlalchemy.exc import IntegrityError, OperationalError
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict
from werkzeug.exceptions import HTTPException, UnsupportedMediaType
from werkzeug.routing import IntegerConverter, Map

from shop import idempotency
from shop.db import db, unit_of_work
from shop.errors import (
    PROBLEM_JSON,
    Forbidden,
    ShopError,
    Unavailable,
    problem,
    render_http_exception,
)
from shop.schemas import MAX_ID, AnswerSchema, BaseSchema, PageSchema
from shop.security import Role

log = logging.getLogger(__name__)
BEARER = "bearerAuth"
# The documented Location header of a 201.
LOCATION = {"Location": {"schema": {"type": "string"}}}


DESCRIPTION = """The REST API of an online store: accounts, catalog, cart and checkout, orders
and payments, inventory, reports.

- **Auth**: `Authorization: Bearer <access token>` from `POST /api/v1/auth/login` (15 minutes);
  `POST /api/v1/auth/refresh` with the refresh token as bearer rotates the pair. Roles are
  `customer`, `staff` and `admin` (each can do what the one before can); an operation's
  description and its `x-roles` say who may call it. Someone else's order or address is a 404.
- **Errors** are `application/problem+json`: `status`, `title`, `detail`, `request_id`, and for
  validation (422) `errors`, field -> messages. 401 no or bad token, 403 role, 409 conflict,
  413 body over 1 MiB (an image upload: 10 MiB), 415 body not JSON (an upload: not multipart),
  429 rate limited (`Retry-After`), 503 the database, the media storage or Stripe
  unavailable (`Retry-After`). Never a 500 for bad input.
- **Lists** answer `{items, page, page_size, total, pages, links}` (and a `Link` header);
  `page`, `page_size` (at most 100); an unknown query parameter is a 422.
- **Rate limits**: every call counts against its user's budget (`RATE_LIMIT_USER`) or, without
  a token, its address's (`RATE_LIMIT_ANON`); answers carry `RateLimit-Limit`,
  `RateLimit-Remaining` and `RateLimit-Reset` (seconds), and past the limit a 429 with
  `Retry-After`.
- **HTTP caching**: public catalog answers carry a strong `ETag` and, without credentials,
  `Cache-Control: public, max-age=...` (30 s by default); `If-None-Match` with the current tag
  answers 304. Any answer to a request with credentials is `Cache-Control: no-store`.
- **Idempotency**: `POST /api/v1/orders`, payments and purchase orders take an
  `Idempotency-Key` (at most 255 characters, kept 24 h): a repeat with the same body answers
  the first answer and changes nothing; the same key with another body is a 409.
- Text is valid Unicode without NUL characters (a 422 otherwise).
- A `PATCH` changes only the fields its body names (no body changes nothing).
- **Money** is a decimal string with two places (`"19.99"`); timestamps are UTC, ISO 8601 with
  milliseconds; ids are 1 to 2147483647.
"""


class RequiredAnswers(BasePlugin):
    """Marks required, in OpenAPI, what every answer carries, so that generated clients get
    typed models rather than all-optional ones: the read-only fields of any schema (per OpenAPI
    3.0 a read-only required field is required in responses only), and every field of an
    AnswerSchema."""

    def schema_helper(self, name: str, definition: dict[str, Any], **kwargs: Any) -> Any:
        schema = kwargs.get("schema")
        properties: dict[str, Any] = definition.get("properties", {})
        answer = isinstance(schema, AnswerSchema) or (
            isinstance(schema, type) and issubclass(schema, AnswerSchema)
        )
        required = set(definition.get("required", []))
        required |= (
            set(properties)
            if answer
            else {field for field, spec in properties.items() if spec.get("readOnly")}
        )
        return (
            {"required": [field for field in properties if field in required]} if required else None
        )


class CrossFieldRules(BasePlugin):
    """Adds a schema's `openapi_rules` (JSON Schema keywords such as `oneOf`) to its definition:
    the rules its validators enforce across fields, stated where clients validate from."""

    def schema_helper(self, name: str, definition: dict[str, Any], **kwargs: Any) -> Any:
        schema = kwargs.get("schema")
        rules: dict[str, Any] | None = getattr(schema, "openapi_rules", None)
        return dict(rules) if rules else None


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document."""

    type = ma.fields.String()
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    request_id = ma.fields.String(required=True, allow_none=True)
    errors = ma.fields.Dict(metadata={"description": "field -> list of messages"})


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        return render_http_exception(error)

    def _register_responses(self) -> None:
        # As flask-smorest's, but errors are documented as application/problem+json.
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


class IdConverter(IntegerConverter):
    """`<int:...>` in a path is a row id, 1 to MAX_ID (the id columns' range, documented in
    OpenAPI as the parameter's minimum and maximum): any other number matches no route, so it
    is a 404 on every database, never an overflow in one."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, *args, **{"min": 1, "max": MAX_ID, **kwargs})


class IdempotencyHeaderSchema(BaseSchema):
    class Meta:
        unknown = "exclude"

    key = fields.String(
        data_key="Idempotency-Key",
        validate=validate.Length(min=1, max=idempotency.MAX_KEY_LENGTH),
        metadata={"description": "repeat a request safely: same key and body, same answer"},
    )


# What a multipart body may carry besides its file (UPLOAD_MAX_BYTES): the other fields and
# the parts' boundaries and headers.
MULTIPART_OVERHEAD = 64 * 1024


class Parser(FlaskParser):
    """webargs' parser, and one more location, `multipart`: a multipart/form-data body's
    fields and files together (OpenAPI documents them as one body)."""

    __location_map__ = {**FlaskParser.__location_map__, "multipart": "load_multipart"}

    def load_multipart(self, req: flask.Request, schema: ma.Schema) -> Any:
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "multipart": "multipart/form-data",
    }

    def _store_endpoint_docs(self, endpoint: str, obj: Any, *args: Any, **kwargs: Any) -> None:
        """As flask-smorest's, and every operation gets an operationId from its method and
        view class ("getProductById", "postLogin"): generated clients get readable names."""
        super()._store_endpoint_docs(endpoint, obj, *args, **kwargs)
        for method, doc in self._docs[endpoint].items():
            if isinstance(doc, dict) and method.upper() in self.HTTP_METHODS:
                manual = doc.setdefault("manual_doc", {})
                manual.setdefault("operationId", f"{method}{obj.__name__}")

    def arguments(
        self,
        schema: Any,
        *,
        location: str = "json",
        max_bytes: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """As flask-smorest's, but an unknown query parameter is a 422 naming it (webargs
        ignores them by default), and a body must be declared JSON (415; 400 when it is not
        JSON, 413 when too large: all documented). A multipart body's file may be `max_bytes`
        (UPLOAD_MAX_BYTES when not given)."""
        if location == "query":
            kwargs.setdefault("unknown", ma.RAISE)
        parse = super().arguments(schema, location=location, **kwargs)
        if location == "multipart":
            return self._upload(parse, max_bytes)
        if location != "json":
            return parse

        def decorator(func: Any) -> Any:
            parsed = parse(func)

            @wraps(parsed)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if request.content_length and not request.is_json:
                    raise UnsupportedMediaType("The body must be JSON (Content-Type).")
                return parsed(*args, **kwargs)

            return self.errors(400, 413, 415)(wrapper)

        return decorator

    def _upload(self, parse: Any, max_bytes: int | None) -> Any:
        """A multipart body (location="multipart") may be as large as its file may be
        (`max_bytes` or UPLOAD_MAX_BYTES, and the rest of the body), not only
        MAX_CONTENT_LENGTH; it must be declared multipart/form-data (415)."""

        def decorator(func: Any) -> Any:
            parsed = parse(func)

            @wraps(parsed)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                file_limit = max_bytes or current_app.config["UPLOAD_MAX_BYTES"]
                request.max_content_length = file_limit + MULTIPART_OVERHEAD
                if request.content_length and request.mimetype != "multipart/form-data":
                    raise UnsupportedMediaType("The body must be multipart/form-data.")
                return parsed(*args, **kwargs)

            return self.errors(413, 415)(wrapper)

        return decorator

    def response(self, status_code: int, schema: Any = None, **kwargs: Any) -> Any:
        """As flask-smorest's, but a 202 or 204 without a schema answers no body at all (not a
        JSON `null`) and no Content-Type, and a page of a list also carries its links as an
        RFC 8288 Link header."""
        documented = super().response(status_code, schema, **kwargs)
        if isinstance(schema, type) and issubclass(schema, PageSchema):
            return lambda func: _with_link_header(documented(func))
        if schema is not None or status_code not in (202, 204):
            return documented

        def decorator(func: Any) -> Any:
            @wraps(documented(func))
            def wrapper(*args: Any, **kwargs: Any) -> Response:
                func(*args, **kwargs)
                response = current_app.response_class(status=status_code)
                del response.headers["Content-Type"]
                return response

            return wrapper

        return decorator

    def errors(self, *codes: int) -> Callable[[Any], Any]:
        """Document the error statuses a view really answers."""

        def decorator(func: Any) -> Any:
            for code in codes:
                func = self.alt_response(code, response=http.HTTPStatus(code).name)(func)
            return func

        return decorator

    def auth_required(self, *roles: Role, refresh: bool = False) -> Any:
        """Require a valid token (with one of `roles`, when given); documents bearer auth, the
        roles allowed (`x-roles`), 401 and 403. Which objects they may touch is the
        resource's policy (shop.auth.policy)."""
        allowed = [r for r in Role if not roles or any(r.includes(role) for role in roles)]

        def decorator(func: Any) -> Any:
            @wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                verify_jwt_in_request(refresh=refresh)
                if roles and not any(current_user.has_role(role) for role in roles):
                    raise Forbidden(f"This needs the {' or '.join(roles)} role.")
                return current_app.ensure_sync(func)(*args, **kwargs)

            names = ", ".join(r.value for r in allowed)
            who = f"a token of one of these roles: {names}" if roles else "a token (any role)"
            wrapper = self.doc(
                security=[{BEARER: []}],
                description=f"Needs {who}.",
                **{"x-roles": [r.value for r in allowed]},
            )(wrapper)
            return self.errors(401, 403)(wrapper) if roles else self.errors(401)(wrapper)

        return decorator

    def auth_optional(self, func: Any) -> Any:
        """Anyone may call; a valid token (an invalid one is a 401) may show more."""

        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            verify_jwt_in_request(optional=True)
            return current_app.ensure_sync(func)(*args, **kwargs)

        wrapper = self.doc(
            security=[{}, {BEARER: []}],
            description="Anyone; a valid token may show more (an invalid one is a 401).",
        )(wrapper)
        return self.errors(401)(wrapper)

    def signed(self, verify: Callable[[bytes, str | None], None], secret: str) -> Any:
        """A webhook signed in `X-Signature: sha256=<hex HMAC-SHA256 of the raw body with the
        `secret` setting>`: `verify` checks the raw bytes before anything parses them (and
        raises the 401 when they are not so signed); documented as a required header."""

        def decorator(func: Any) -> Any:
            @wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                verify(request.get_data(), request.headers.get("X-Signature"))
                return func(*args, **kwargs)

            return self.doc(
                parameters=[
                    {
                        "in": "header",
                        "name": "X-Signature",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": f"sha256=<hex HMAC-SHA256 of the raw body with {secret}>",
                    }
                ]
            )(wrapper)

        return decorator

    def idempotent(
        self, func: Any = None, *, scope: Callable[[dict[str, Any]], str | None] | None = None
    ) -> Any:
        """An optional Idempotency-Key header: a repeat with the same key and body answers the
        first answer byte for byte and changes nothing (see shop.idempotency). Goes below the
        body's `arguments`, so a body is validated (422) before a key is claimed. Keys are the
        signed-in user's, or, where `scope` (given the view's keyword arguments) names one,
        that anonymous client's (`@blp.idempotent(scope=...)`).

        With a key, the request runs in one unit of work that claims the key, runs the view
        (whose service joins it) and stores the answer, so all three commit together. (This
        one HTTP concern opens the transaction itself: the stored answer is the response.)"""
        if func is None:
            return lambda view: self.idempotent(view, scope=scope)

        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            *view_args, headers = args  # `arguments` below appends the parsed header last
            key = headers.get("key")
            if key is None:
                return func(*view_args, **kwargs)
            anonymous = scope(kwargs) if scope is not None else None
            owner = None if anonymous is not None else current_user.id
            body = view_args[-1] if len(view_args) > 1 else None  # after the MethodView
            with unit_of_work():
                earlier = idempotency.claim(
                    owner,
                    key,
                    f"{request.method} {request.path}",
                    idempotency.fingerprint(body),
                    scope=anonymous,
                )
                if earlier is not None:
                    return _replay(earlier)
                response = func(*view_args, **kwargs)
                idempotency.store(
                    owner,
                    key,
                    idempotency.Answer(
                        status=response.status_code,
                        body=response.get_data(as_text=True),
                        location=response.headers.get("Location"),
                    ),
                    scope=anonymous,
                )
            return response

        return self.arguments(IdempotencyHeaderSchema, location="headers")(wrapper)


def _with_link_header(view: Any) -> Any:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        response = view(*args, **kwargs)
        links = get_appcontext()["result_dump"]["links"]
        response.headers["Link"] = ", ".join(
            f'<{link}>; rel="{rel}"' for rel, link in links.items() if link is not None
        )
        return response

    return wrapper


def _replay(answer: idempotency.Answer) -> Response:
    response = current_app.response_class(
        answer.body, status=answer.status, mimetype="application/json"
    )
    if answer.location:
        response.headers["Location"] = answer.location
    return response


api = Api()


def _render_shop_error(error: ShopError) -> Response:
    retry = {"Retry-After": str(current_app.config["RETRY_AFTER_SECONDS"])}
    headers = retry if isinstance(error, Unavailable) else None
    return problem(error.status, error.detail, errors=error.errors, headers=headers)


def _render_integrity_error(error: IntegrityError) -> Response:
    db.session.rollback()
    log.info("integrity error: %s", error.orig)
    return problem(409, "The request conflicts with existing data.")


def _render_unavailable(error: OperationalError) -> Response:
    # Connection refused or lost, a failover, a deadlock or lock timeout: all transient. The
    # client retries (an Idempotency-Key makes a retried write safe).
    try:
        db.session.rollback()
    except OperationalError:
        db.session().invalidate()  # the connection went with the server
    log.warning("database unavailable: %s", error.orig)
    return problem(
        503,
        "The database is unavailable; retry shortly.",
        headers={"Retry-After": str(current_app.config["RETRY_AFTER_SECONDS"])},
    )


def _render_unexpected(error: Exception) -> Response:
    db.session.rollback()
    log.exception("unhandled error")
    return problem(500, "An unexpected error occurred; it has been logged.")


def register_errorhandlers(app: flask.Flask) -> None:
    app.register_error_handler(ShopError, _render_shop_error)
    app.register_error_handler(IntegrityError, _render_integrity_error)
    app.register_error_handler(OperationalError, _render_unavailable)
    app.register_error_handler(Exception, _render_unexpected)
    # HTTPException (werkzeug, webargs, flask-limiter) is rendered by Api.handle_http_exception.


def is_admin() -> bool:
    """Whether the request carries a valid admin token (after auth_optional/auth_required)."""
    user = get_current_user()
    return user is not None and bool(user.has_role(Role.ADMIN))


def visibility_scope() -> str:
    return "admin" if is_admin() else "public"


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing it (and its dependencies).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


# Swagger UI and ReDoc assets are served from installed packages, so /docs works offline.
docs_assets = flask.Blueprint("docs_assets", __name__, url_prefix="/docs/assets")


@docs_assets.get("/swagger/<path:filename>")
def swagger_asset(filename: str) -> flask.Response:
    return flask.send_from_directory(_package_dir("flask_swagger_ui") / "dist", filename)


@docs_assets.get("/redoc/<path:filename>")
def redoc_asset(filename: str) -> flask.Response:
    js = _package_dir("flask_openapi3_redoc") / "templates" / "redoc" / "js"
    return flask.send_from_directory(js, filename)
