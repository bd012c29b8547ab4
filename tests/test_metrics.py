"""GET /metrics: who may read it, and figures that add up after known traffic (requests by
route, durations, statements per request, cache hits by namespace, jobs, the outbox, webhook
deliveries, orders); the slow-request log; the dashboard and alert rules in deploy/ naming
only metrics that exist."""

import json
import logging
import operator
import re
import shutil
import subprocess
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Queue

from shop import metrics
from shop.config import ConfigError, load_config
from shop.db import db, unit_of_work
from shop.outbox import OutboxMessage
from shop.products.cache import CATALOG
from shop.queues import DEFAULT_QUEUE
from shop.schedule import LAST_TICK_KEY, RelayingScheduler
from tests.conftest import TEST_REDIS_URL, statements_of
from tests.events.test_webhooks import Receiver, add_endpoint, make_due, tick
from tests.factories import make_product

ROOT = Path(__file__).resolve().parent.parent
API = "/api/v1"
SHIP_TO = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}


def parse(text):
    """{(sample name, labels): value} and the family names of an exposition."""
    found, names = {}, set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found, names


def scrape(client, **kwargs):
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain")
    return parse(response.get_data(as_text=True))[0]


def value(found, name, **labels):
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before, after, name, **labels):
    return value(after, name, **labels) - value(before, name, **labels)


# --- access --------------------------------------------------------------------------------


def test_metrics_are_read_from_an_allowed_address_and_hidden_from_others(client):
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    hidden = client.get("/metrics", environ_base=ELSEWHERE)
    assert hidden.status_code == 404 and hidden.content_type == "application/problem+json"
    assert client.get("/api/v1/metrics").status_code == 404  # not under the API


def test_a_token_or_an_allowed_block_opens_them_and_nothing_else_does(other_app):
    app = other_app(METRICS_ALLOW_FROM="10.0.0.0/8, 2001:db8::/32", METRICS_TOKEN="s3cret-token")
    client = app.test_client()
    assert client.get("/metrics").status_code == 404  # 127.0.0.1 is not in the list now
    for address in ("10.1.2.3", "2001:db8::5", "::ffff:10.0.0.7"):
        assert client.get("/metrics", environ_base={"REMOTE_ADDR": address}).status_code == 200
    with_token = {"Authorization": "Bearer s3cret-token"}
    assert client.get("/metrics", headers=with_token, environ_base=ELSEWHERE).status_code == 200
    for wrong in ("Bearer s3cret-tokeN", "Bearer ", "Basic s3cret-token", "s3cret-token"):
        answer = client.get("/metrics", headers={"Authorization": wrong}, environ_base=ELSEWHERE)
        assert answer.status_code == 404, wrong
    # Without a token configured, no Authorization header opens them.
    open_to_none = other_app(METRICS_ALLOW_FROM="10.0.0.0/8").test_client()
    answer = open_to_none.get("/metrics", headers={"Authorization": "Bearer "})
    assert answer.status_code == 404


def test_metrics_can_be_switched_off(other_app):
    assert other_app(METRICS_ENABLED=False).test_client().get("/metrics").status_code == 404


def test_a_bad_allow_list_refuses_to_start(tmp_path):
    with pytest.raises(ConfigError, match="METRICS_ALLOW_FROM"):
        load_config(str(tmp_path), {"METRICS_ALLOW_FROM": "10.0.0.0/8, not-an-address"})
    config = load_config(str(tmp_path), {"METRICS_ALLOW_FROM": "192.168.0.1/24"})
    assert metrics.allowed("192.168.0.200", None, config)
    assert not metrics.allowed("192.168.1.1", None, config)
    assert not metrics.allowed(None, None, config) and not metrics.allowed("junk", None, config)


# --- figures after known traffic ----------------------------------------------------------


def test_requests_are_counted_by_url_rule_method_and_status(app, client, count_queries):
    product = make_product(app)
    before = scrape(client)
    for _ in range(5):
        assert client.get("/health").status_code == 200
    route = "/api/v1/products/<int:product_id>"
    with count_queries() as counter:
        assert client.get(f"{API}/products/{product.id}").status_code == 200
        assert client.get(f"{API}/products/999999").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    assert client.delete("/health").status_code == 405
    assert client.open("/health", method="BREW").status_code == 405
    after = scrape(client)

    assert delta(before, after, "shop_http_requests_total", route="/health", method="GET",
                 status="200") == 5  # fmt: skip
    for status in ("200", "404"):
        labels = {"route": route, "method": "GET", "status": status}
        assert delta(before, after, "shop_http_requests_total", **labels) == 1
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert delta(before, after, "shop_http_requests_total", **unmatched) == 1
    # A method the rule does not take: werkzeug matched no rule either.
    assert delta(before, after, "shop_http_requests_total", route="unmatched", method="DELETE",
                 status="405") == 1  # fmt: skip
    assert delta(before, after, "shop_http_requests_total", route="unmatched", method="other",
                 status="405") == 1  # fmt: skip
    # The raw path is never a label.
    raw = f"{API}/products/{product.id}"
    assert not [labels for _, labels in after if raw in dict(labels).values()]

    duration = "shop_http_request_duration_seconds"
    assert delta(before, after, f"{duration}_count", route="/health", method="GET") == 5
    assert delta(before, after, f"{duration}_count", route=route, method="GET") == 2
    assert 0 < delta(before, after, f"{duration}_sum", route=route, method="GET") < 5
    fast = delta(before, after, f"{duration}_bucket", route="/health", method="GET", le="10.0")
    assert fast == 5
    statements = "shop_db_statements_per_request"
    assert delta(before, after, f"{statements}_count", route="/health") == 5
    assert delta(before, after, f"{statements}_sum", route="/health") == 0
    assert delta(before, after, f"{statements}_count", route=route) == 2
    # Every statement the two detail requests sent (the scrape's are its own route's).
    assert delta(before, after, f"{statements}_sum", route=route) == counter.count > 0
    assert delta(before, after, f"{statements}_bucket", route="/health", le="0.0") == 5


def test_cache_hits_and_misses_are_counted_by_namespace(app, client):
    make_product(app)
    before = scrape(client)
    assert client.get(f"{API}/products?page_size=5").status_code == 200
    middle = scrape(client)
    assert client.get(f"{API}/products?page_size=5").status_code == 200
    after = scrape(client)
    assert delta(before, middle, "shop_cache_misses_total", namespace=CATALOG) >= 1
    # The second answer came whole from the cache: one hit, nothing missed.
    assert delta(middle, after, "shop_cache_hits_total", namespace=CATALOG) == 1
    assert delta(middle, after, "shop_cache_misses_total", namespace=CATALOG) == 0


def test_orders_created_count_committed_orders_only(app, client, as_customer):
    product = make_product(app, price=Decimal("4.00"), stock=1)
    before = scrape(client)
    body = {"items": [{"product_id": product.id, "quantity": 1}], "shipping_address": SHIP_TO}
    assert client.post(f"{API}/orders", headers=as_customer, json=body).status_code == 201
    assert client.post(f"{API}/orders", headers=as_customer, json=body).status_code == 409
    after = scrape(client)
    assert delta(before, after, "shop_orders_created_total") == 1


def test_jobs_queued_started_and_failed_by_queue(app, client, run_jobs):
    before = scrape(client)
    registered = client.post(
        f"{API}/auth/register", json={"email": "jobs@example.com", "password": "long-enough-1"}
    )
    assert registered.status_code == 201  # its verification email goes to RQ
    queued = delta(before, scrape(client), "shop_jobs_queued_total", queue=DEFAULT_QUEUE)
    assert queued >= 1
    Queue(DEFAULT_QUEUE, connection=Redis.from_url(TEST_REDIS_URL)).enqueue(operator.truediv, 1, 0)
    ran = run_jobs()
    after = scrape(client)
    assert ran == queued + 1
    assert delta(before, after, "shop_jobs_started_total", queue=DEFAULT_QUEUE) == ran
    assert delta(before, after, "shop_jobs_failed_total", queue=DEFAULT_QUEUE) == 1


def test_the_scheduler_counts_the_jobs_it_queues_and_records_its_tick(app, client):
    redis = Redis.from_url(TEST_REDIS_URL)
    scheduler = RelayingScheduler(queue_name=DEFAULT_QUEUE, connection=redis)
    scheduler.enqueue_in(timedelta(seconds=-1), operator.add, 1, 2)
    before = scrape(client)
    with app.app_context():
        scheduler.enqueue_jobs()
    assert delta(before, scrape(client), "shop_jobs_queued_total", queue=DEFAULT_QUEUE) == 1
    assert Queue(DEFAULT_QUEUE, connection=redis).count == 1
    assert float(redis.get(LAST_TICK_KEY)) == pytest.approx(time.time(), abs=5)


def test_outbox_backlog_and_queue_depth_are_read_at_scrape(app, client):
    with app.app_context(), unit_of_work():
        db.session.add_all([OutboxMessage(task="x.y", payload={}) for _ in range(3)])
    queue = Queue(DEFAULT_QUEUE, connection=Redis.from_url(TEST_REDIS_URL))
    queue.enqueue(operator.add, 1, 2)
    queue.enqueue(operator.add, 3, 4)
    found = scrape(client)
    assert value(found, "shop_outbox_backlog") == 3
    assert value(found, "shop_outbox_oldest_age_seconds") >= 0
    assert value(found, "shop_queue_depth", queue=DEFAULT_QUEUE) == 2
    assert value(found, "shop_queue_failed", queue=DEFAULT_QUEUE) == 0
    assert value(found, "shop_scrape_ok", source="database") == 1
    assert value(found, "shop_scrape_ok", source="redis") == 1


def test_a_scrape_with_redis_down_still_answers(other_app, private_redis):
    redis = private_redis()
    app = other_app(REDIS_URL=redis.url)
    redis.kill()
    found = scrape(app.test_client())
    assert value(found, "shop_scrape_ok", source="redis") == 0
    assert value(found, "shop_scrape_ok", source="database") == 1
    assert ("shop_queue_depth", (("queue", DEFAULT_QUEUE),)) not in found


@pytest.fixture
def receiver():
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_webhook_deliveries_are_counted_by_status(
    app, client, as_customer, as_admin, receiver, run_jobs, monkeypatch
):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE", True)
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_ATTEMPTS", 2)
    receiver.answers = [500, 500, 200]
    failing = add_endpoint(client, as_admin, receiver.url, ["order.created"])
    product = make_product(app, stock=5, low_stock_threshold=0)
    body = {"items": [{"product_id": product.id, "quantity": 1}], "shipping_address": SHIP_TO}
    before = scrape(client)
    assert client.post(f"{API}/orders", headers=as_customer, json=body).status_code == 201
    tick(app, run_jobs)  # 500: retrying
    make_due(app)
    tick(app, run_jobs)  # 500 again, the last attempt: given up
    client.post(f"{API}/webhooks/{failing['id']}/ping", headers=as_admin)  # 200
    run_jobs()
    after = scrape(client)
    assert delta(before, after, "shop_webhook_deliveries_total", status="retrying") == 1
    assert delta(before, after, "shop_webhook_deliveries_total", status="failed") == 1
    assert delta(before, after, "shop_webhook_deliveries_total", status="succeeded") == 1


# --- the slow-request log ------------------------------------------------------------------


def test_slow_requests_are_logged_with_their_slowest_statements(other_app, caplog):
    app = other_app(SLOW_REQUEST_MS=0)
    for index in range(3):
        make_product(app, name=f"Slow {index}")
    client = app.test_client()
    caplog.set_level(logging.WARNING, logger="shop.slow")
    with statements_of(app) as counter:
        assert client.get(f"{API}/products?q=slow&sort=-price").status_code == 200
    [line] = [r for r in caplog.records if r.name == "shop.slow"]
    assert line.route == "/api/v1/products" and line.path == "/api/v1/products"
    assert line.method == "GET" and line.status == 200 and line.duration_ms > 0
    assert line.statements == counter.count >= 3
    assert len(line.slowest) == metrics.SLOWEST
    took = [statement["ms"] for statement in line.slowest]
    assert took == sorted(took, reverse=True)
    assert all(len(s["sql"]) <= metrics.SQL_CHARS and "\n" not in s["sql"] for s in line.slowest)
    assert "statements" in line.getMessage()


def test_fast_requests_are_not_logged(client, caplog):
    caplog.set_level(logging.WARNING, logger="shop.slow")
    client.get("/health")
    assert not [r for r in caplog.records if r.name == "shop.slow"]


# --- deploy/: the dashboard and the alert rules ---------------------------------------------

SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def referenced(expression):
    return set(re.findall(r"\bshop_[a-z0-9_]+\b", expression))


def known(name, families):
    return name in families or any(
        name.endswith(suffix) and name.removesuffix(suffix) in families for suffix in SUFFIXES
    )


def test_the_dashboard_and_alert_rules_name_only_metrics_that_exist(client):
    _, families = parse(client.get("/metrics").get_data(as_text=True))
    dashboard = json.loads((ROOT / "deploy/grafana-dashboard.json").read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for wanted in ("requests", "p99", "5xx", "statements", "cache hit", "queue", "outbox",
                   "webhook", "websocket", "orders"):  # fmt: skip
        assert wanted in titles, wanted
    rules = yaml.safe_load((ROOT / "deploy/prometheus-alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    names = " ".join(rule["alert"] for rule in alerts).lower()
    for wanted in ("queue", "outbox", "5xx", "webhook", "p99"):
        assert wanted in names, wanted
    expressions += [rule["expr"] for rule in alerts]
    assert all(rule["labels"]["severity"] and rule["annotations"]["summary"] for rule in alerts)
    used = set().union(*map(referenced, expressions))
    assert used and not [name for name in used if not known(name, families)]


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool (apt-get install prometheus)")
def test_promtool_accepts_the_rules_and_every_dashboard_expression(tmp_path):
    """Prometheus's own checker: the alert rules, and each panel's query as a recording rule
    (Grafana's $__rate_interval as 5m)."""
    result = subprocess.run(
        ["promtool", "check", "rules", str(ROOT / "deploy/prometheus-alerts.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    dashboard = json.loads((ROOT / "deploy/grafana-dashboard.json").read_text())
    recorded = [
        {"record": f"shop:panel{panel['id']}:{target['refId']}",
         "expr": target["expr"].replace("$__rate_interval", "5m")}
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]  # fmt: skip
    rules = tmp_path / "panels.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": recorded}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
