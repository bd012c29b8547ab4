"""Events API: the feed of what happened, as each user may see it."""

from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user

from shop.api import Blueprint
from shop.db import Page
from shop.events import log
from shop.events.schemas import EventQueryArgsSchema, EventSchema
from shop.schemas import page_of

blp = Blueprint("events", __name__, url_prefix="/api/v1/events", description="Events")


@blp.route("")
class Events(MethodView):
    @blp.auth_required()
    @blp.arguments(EventQueryArgsSchema, location="query")
    @blp.response(200, page_of(EventSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """List events: newest first, or those after an id, oldest first

        A customer sees the events of their own orders; staff and admins every event.
        With `after`, an event appears only once every transaction that began before it
        has ended, so reading on from the last id received never skips one."""
        return log.feed(current_user, **args)
