"""GET /metrics (Prometheus text, outside the API and its document) and GET /admin/system."""

from typing import Any

import flask
from flask import Response, abort, current_app, request
from flask.views import MethodView

from shop import metrics
from shop.api import Blueprint
from shop.ops.schemas import SystemSchema
from shop.ops.scrape import Gauges
from shop.ops.system import system_status
from shop.security import Role

metrics_blp = flask.Blueprint("metrics", __name__)


@metrics_blp.get("/metrics")
def scrape() -> Response:
    """Every worker's figures and the scrape-time gauges; a 404 to anyone not allowed."""
    config = current_app.config
    allowed = metrics.allowed(request.remote_addr, request.headers.get("Authorization"), config)
    if not config["METRICS_ENABLED"] or not allowed:
        abort(404)
    return Response(metrics.exposition(Gauges()), content_type=metrics.CONTENT_TYPE)


blp = Blueprint("system", __name__, url_prefix="/api/v1/admin", description="Operations")


@blp.route("/system")
class System(MethodView):
    @blp.auth_required(Role.ADMIN)
    @blp.response(200, SystemSchema)
    def get(self) -> dict[str, Any]:
        """The state of the database, Redis, queues, scheduler, outbox and this process

        Each part is read on its own: one whose dependency does not answer has `status`
        `unavailable` and an `error`, and the others are still answered."""
        return system_status()
