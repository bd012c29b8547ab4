"""flask-smorest glue: the Api that renders problem+json and the Blueprint with role gates."""

from __future__ import annotations

import http
import importlib.util
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import flask
import flask_smorest
import marshmallow as ma
from flask import current_app
from flask_jwt_extended import current_user, get_current_user, verify_jwt_in_request
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from shop.errors import PROBLEM_JSON, Forbidden, render_http_exception
from shop.security import Role

BEARER = "bearerAuth"


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


class Blueprint(flask_smorest.Blueprint):
    def arguments(self, schema: Any, *, location: str = "json", **kwargs: Any) -> Any:
        """As flask-smorest's; a JSON body also documents 400 (malformed) and 413 (too large)."""
        parse = super().arguments(schema, location=location, **kwargs)
        if location != "json":
            return parse
        return lambda func: self.errors(400, 413)(parse(func))

    def errors(self, *codes: int) -> Callable[[Any], Any]:
        """Document the error statuses a view really answers."""

        def decorator(func: Any) -> Any:
            for code in codes:
                func = self.alt_response(code, response=http.HTTPStatus(code).name)(func)
            return func

        return decorator

    def auth_required(self, role: Role | None = None, *, refresh: bool = False) -> Any:
        """Require a valid token (and at least `role`); documents bearer auth, 401 and 403."""

        def decorator(func: Any) -> Any:
            @wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                verify_jwt_in_request(refresh=refresh)
                if role is not None and not current_user.has_role(role):
                    raise Forbidden(f"This needs the {role} role.")
                return current_app.ensure_sync(func)(*args, **kwargs)

            wrapper = self.doc(security=[{BEARER: []}])(wrapper)
            return self.errors(401, 403)(wrapper) if role else self.errors(401)(wrapper)

        return decorator

    def auth_optional(self, func: Any) -> Any:
        """Anyone may call; a valid token (an invalid one is a 401) may show more."""

        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            verify_jwt_in_request(optional=True)
            return current_app.ensure_sync(func)(*args, **kwargs)

        wrapper = self.doc(security=[{}, {BEARER: []}])(wrapper)
        return self.errors(401)(wrapper)


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
