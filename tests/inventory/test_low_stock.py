"""Low stock: one open notification per product or variant, an email to the admins once,
the sweep job, the API, and the ledger reconciliation."""

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select, text, update

from shop.audit.models import AuditLog
from shop.db import db, unit_of_work
from shop.inventory.low_stock import open_low_stock_notification, sweep_low_stock
from shop.inventory.models import Notification
from shop.products.models import MovementType, Product
from shop.products.stock import change_stock
from tests.factories import headers_for, make_product, make_variant

MOVES = "/api/v1/inventory/transactions"


def take(client, headers, product, quantity, **extra):
    return client.post(
        MOVES,
        headers=headers,
        json={"product_id": product.id, "type": "OUT", "quantity": quantity, **extra},
    )


def notifications(app):
    with app.app_context():
        return db.session.scalars(select(Notification).order_by(Notification.id)).all()


def test_drop_to_threshold_opens_one_notification_and_one_email(
    client, app, as_staff, mailbox, run_jobs
):
    product = make_product(app, name="Kettle", stock=8, low_stock_threshold=5)
    take(client, as_staff, product, 2)
    run_jobs()
    assert notifications(app) == []  # 6 > 5
    take(client, as_staff, product, 1)  # 5: at the threshold
    take(client, as_staff, product, 1)  # 4: still open, nothing new
    run_jobs()  # opens the notification and queues the email
    run_jobs()  # sends the email
    [notification] = notifications(app)  # opened by the job, with the stock it then saw
    assert notification.product_id == product.id and notification.stock == 4
    assert notification.kind == "low_stock" and "Kettle" in notification.message
    [email] = mailbox.to("ops@example.com")
    assert "Low stock: Kettle" in email["Subject"]


def test_after_ack_a_new_drop_opens_a_new_notification(client, app, as_staff, run_jobs):
    product = make_product(app, stock=6, low_stock_threshold=5)
    take(client, as_staff, product, 1)
    run_jobs()
    [first] = notifications(app)
    acked = client.post(f"/api/v1/notifications/{first.id}/ack", headers=as_staff)
    assert acked.status_code == 200 and acked.json["acknowledged_at"]
    again = client.post(f"/api/v1/notifications/{first.id}/ack", headers=as_staff)
    assert again.json["acknowledged_at"] == acked.json["acknowledged_at"]
    take(client, as_staff, product, 1)
    run_jobs()
    assert [n.stock for n in notifications(app)] == [5, 4]


def test_variants_get_their_own_notifications(client, app, as_staff, run_jobs):
    product = make_product(app, stock=0, low_stock_threshold=2)
    small = make_variant(app, product, stock=3)
    large = make_variant(app, product, stock=3)
    take(client, as_staff, product, 1, variant_id=small.id)
    take(client, as_staff, product, 2, variant_id=large.id)
    run_jobs()
    assert {(n.product_id, n.variant_id) for n in notifications(app)} == {
        (product.id, small.id),
        (product.id, large.id),
    }


def test_concurrent_stock_changes_open_one_notification(app, staff, run_jobs):
    product = make_product(app, stock=30, low_stock_threshold=20)
    headers = headers_for(app, staff)

    def take_one(_):
        return take(app.test_client(), headers, product, 1).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(take_one, range(16))) == {201}
    run_jobs()
    assert len(notifications(app)) == 1


def test_concurrent_openers_create_one_row(app):
    product = make_product(app, stock=1, low_stock_threshold=5)

    def open_one(_):
        with app.app_context():
            return open_low_stock_notification(product.id)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(open_one, range(6)))
    assert len([r for r in results if r is not None]) == 1
    assert len(notifications(app)) == 1


def test_the_database_refuses_a_second_open_notification(app):
    product = make_product(app, stock=1, low_stock_threshold=5)
    with app.app_context():
        open_low_stock_notification(product.id)
        try:
            with unit_of_work():
                db.session.add(
                    Notification(kind="low_stock", product_id=product.id, message="dup", stock=1)
                )
        except Exception as error:
            assert "uq_notifications_open" in str(error)
        else:
            raise AssertionError("a second open notification was stored")


def test_sweep_finds_what_was_missed_and_is_idempotent(app, mailbox, run_jobs):
    low = make_product(app, stock=9, low_stock_threshold=5)
    variant_product = make_product(app, stock=0, low_stock_threshold=3)
    variant = make_variant(app, variant_product, stock=2)
    make_product(app, stock=50)
    make_product(app, stock=0, is_active=False)
    with app.app_context():  # stock that fell without passing the per-change job
        db.session.execute(update(Product).where(Product.id == low.id).values(stock=1))
        db.session.commit()
        first = sweep_low_stock()
        second = sweep_low_stock()
    assert first == {"candidates": 2, "opened": 2}
    assert second == {"candidates": 0, "opened": 0}
    assert {(n.product_id, n.variant_id) for n in notifications(app)} == {
        (low.id, None),
        (variant_product.id, variant.id),
    }
    run_jobs()
    assert len(mailbox.to("ops@example.com")) == 2


def test_parallel_sweeps_open_each_notification_once(app):
    for _ in range(5):
        make_product(app, stock=1, low_stock_threshold=5)

    def sweep(_):
        with app.app_context():
            return sweep_low_stock()["opened"]

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert sum(pool.map(sweep, range(3))) == 5
    assert len(notifications(app)) == 5


def test_low_stock_job_from_the_cli(app):
    make_product(app, stock=1, low_stock_threshold=5)
    result = app.test_cli_runner().invoke(args=["jobs", "run", "low-stock"])
    assert result.exit_code == 0 and '"opened": 1' in result.output
    with app.app_context():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "job.run"))
    assert entry.changes["job"] == "low-stock" and entry.actor_email == "system"


def test_suggested_reorder_quantity_follows_recent_sales(app):
    selling = make_product(app, stock=40, low_stock_threshold=5)
    idle = make_product(app, stock=3, low_stock_threshold=5)
    with app.app_context(), unit_of_work():
        for _ in range(3):
            change_stock(product_id=selling.id, delta=-12, type=MovementType.SALE, actor=None)
    with app.app_context():
        open_low_stock_notification(selling.id)
        open_low_stock_notification(idle.id)
    by_product = {n.product_id: n for n in notifications(app)}
    # 36 sold in 30 days, 4 left, threshold 5: 36 + 5 - 4.
    assert by_product[selling.id].suggested_reorder_qty == 37
    assert by_product[idle.id].suggested_reorder_qty == 0


def test_low_stock_endpoint(client, app, as_customer, as_staff):
    low = make_product(app, name="Low", stock=2, low_stock_threshold=5)
    make_product(app, name="Fine", stock=20)
    parent = make_product(app, name="Shirt", stock=0, low_stock_threshold=1)
    make_variant(app, parent, name="S", stock=1)
    make_variant(app, parent, name="M", stock=9)
    url = "/api/v1/inventory/low-stock"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=as_customer).status_code == 403
    body = client.get(url, headers=as_staff).json
    assert [(i["name"], i["stock"]) for i in body["items"]] == [("Shirt (S)", 1), ("Low", 2)]
    assert body["items"][1]["product_id"] == low.id and body["items"][1]["variant_id"] is None


def test_notifications_api(client, app, as_customer, as_staff, admin, as_admin):
    product = make_product(app, stock=1, low_stock_threshold=5)
    with app.app_context():
        notification_id = open_low_stock_notification(product.id)
    url = f"/api/v1/notifications/{notification_id}"
    assert client.get("/api/v1/notifications").status_code == 401
    assert client.get("/api/v1/notifications", headers=as_customer).status_code == 403
    assert client.post(f"{url}/ack", headers=as_customer).status_code == 403
    listed = client.get("/api/v1/notifications?open=true", headers=as_staff).json
    assert [n["id"] for n in listed["items"]] == [notification_id]
    assert set(listed["items"][0]) >= {
        "id",
        "kind",
        "product_id",
        "message",
        "stock",
        "created_at",
        "acknowledged_at",
        "suggested_reorder_qty",
    }
    assert client.get("/api/v1/notifications?open=false", headers=as_staff).json["total"] == 0
    assert client.get(url, headers=as_staff).status_code == 200
    assert client.delete(url, headers=as_staff).status_code == 403
    assert client.delete(url, headers=as_admin).status_code == 204
    assert client.delete(url, headers=as_admin).status_code == 404
    assert client.post(f"{url}/ack", headers=as_staff).status_code == 404
    with app.app_context():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "notification.deleted"))
    assert entry.actor_id == admin.id and entry.target_id == notification_id


def test_inventory_check_finds_drift(app):
    product = make_product(app, stock=4)
    runner = app.test_cli_runner()
    clean = runner.invoke(args=["inventory", "check"])
    assert clean.exit_code == 0 and "matches" in clean.output
    with app.app_context():
        db.session.execute(text("UPDATE products SET stock = 7 WHERE id = :id"), {"id": product.id})
        db.session.commit()
    drift = runner.invoke(args=["inventory", "check"])
    assert drift.exit_code == 1
    assert f'"id": {product.id}' in drift.output and '"ledger": 4' in drift.output
    weekly = runner.invoke(args=["jobs", "run", "inventory-check"])
    assert weekly.exit_code == 0 and '"drift": 1' in weekly.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


def test_dashboard_low_stock_count_follows_every_threshold_crossing(
    client, app, as_staff, as_admin, monkeypatch
):
    monkeypatch.setitem(app.config, "CACHE_RESPONSES", False)  # only the count is cached

    def low_stock_count():
        return client.get("/api/v1/reports/dashboard", headers=as_staff).json["low_stock_count"]

    plain = make_product(app, stock=7, low_stock_threshold=5)
    sized = make_product(app, stock=0, low_stock_threshold=3)
    variant = make_variant(app, sized, stock=5)
    assert low_stock_count() == 0
    take(client, as_staff, plain, 1)  # 6: above
    assert low_stock_count() == 0
    take(client, as_staff, plain, 1)  # 5: at the threshold
    assert low_stock_count() == 1
    take(client, as_staff, sized, 2, variant_id=variant.id)  # 3: the variant too
    assert low_stock_count() == 2
    client.patch(f"/api/v1/products/{plain.id}", headers=as_admin, json={"low_stock_threshold": 4})
    assert low_stock_count() == 1
    client.post(
        MOVES,
        headers=as_staff,
        json={"product_id": sized.id, "variant_id": variant.id, "type": "IN", "quantity": 10},
    )
    assert low_stock_count() == 0


def listed(client, headers, **query):
    return client.get("/api/v1/notifications", headers=headers, query_string=query).json["items"]


def test_a_product_created_low_opens_a_notification(client, app, as_staff, run_jobs):
    product = make_product(app, stock=2, low_stock_threshold=5)
    empty = make_product(app, stock=0, low_stock_threshold=5)
    make_product(app, stock=9, low_stock_threshold=5)
    run_jobs()
    opened = {n["product_id"] for n in listed(client, as_staff, open="true")}
    assert opened == {product.id, empty.id}


def test_a_restock_resolves_the_notification_and_a_new_drop_opens_another(
    client, app, as_staff, run_jobs
):
    product = make_product(app, stock=6, low_stock_threshold=5)
    take(client, as_staff, product, 2)  # 4
    run_jobs()
    [first] = listed(client, as_staff, open="true")
    assert first["stock"] == 4 and first["resolved_at"] is None
    client.post(MOVES, headers=as_staff, json={"product_id": product.id, "type": "IN",
                                               "quantity": 10})  # fmt: skip
    resolved = client.get(f"/api/v1/notifications/{first['id']}", headers=as_staff).json
    assert resolved["resolved_at"] and resolved["resolved_by"] == "system"
    assert resolved["stock"] == 14  # the figure shown is live
    assert listed(client, as_staff, open="true") == []
    take(client, as_staff, product, 10)  # 4 again: a new crossing
    run_jobs()
    [second] = listed(client, as_staff, open="true")
    assert second["id"] != first["id"] and second["stock"] == 4
