"""Interactions on the embedded default (SQLite, no Redis): views wait in the process's own
buffer, and the job run in the same process writes them."""

import pytest

from shop import tracking
from shop.reports.behaviour import flush_interactions
from shop.security import Role
from tests.factories import headers_for, make_product, make_user
from tests.recommendations.helpers import API, SESSION, interactions

pytestmark = pytest.mark.embedded


def test_views_are_buffered_in_the_process_and_written_by_the_job(embedded_app):
    app = embedded_app
    client = app.test_client()
    product = make_product(app)
    user = make_user(app)
    headers = headers_for(app, user)
    client.get(f"{API}/products/{product.id}", headers=headers)
    client.get(f"{API}/products/{product.id}", headers={"X-Session-ID": SESSION})
    with app.app_context():
        assert tracking.pending() == 2
        assert flush_interactions()["interactions"] == 2
        assert tracking.pending() == 0
    assert interactions(app) == [
        (user.id, None, product.id, "view", None),
        (None, SESSION, product.id, "view", None),
    ]
    report = client.get(
        f"{API}/reports/products/{product.id}",
        headers=headers_for(app, make_user(app, role=Role.ADMIN)),
    ).json
    assert (report["views"], report["rows"][-1]["views"]) == (2, 2)
