"""Audit trail API: read-only, admin only."""

from typing import Any

from flask.views import MethodView

from shop.api import Blueprint
from shop.audit import services
from shop.audit.models import AuditLog
from shop.audit.schemas import AuditLogQueryArgsSchema, AuditLogSchema
from shop.db import Page
from shop.schemas import page_of
from shop.security import Role

blp = Blueprint("audit", __name__, url_prefix="/api/v1/audit-logs", description="Audit trail")


@blp.route("")
class AuditLogs(MethodView):
    @blp.auth_required(Role.ADMIN)
    @blp.arguments(AuditLogQueryArgsSchema, location="query")
    @blp.response(200, page_of(AuditLogSchema))
    def get(self, args: dict[str, Any]) -> Page:
        """List audit entries, newest first"""
        return services.list_entries(**args)


@blp.route("/<int:entry_id>")
class AuditLogById(MethodView):
    @blp.auth_required(Role.ADMIN)
    @blp.errors(404)
    @blp.response(200, AuditLogSchema)
    def get(self, entry_id: int) -> AuditLog:
        """Get one audit entry"""
        return services.get_entry(entry_id)
