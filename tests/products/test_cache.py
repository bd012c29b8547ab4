"""Cached catalog reads never go stale after a write, and a cache outage is only a miss."""

from decimal import Decimal

from redis import Redis

from shop.caching import bump
from shop.products.cache import CATALOG, CATALOG_MATCHES
from tests.factories import make_product

API = "/api/v1"


def test_second_read_is_served_from_the_cache(client, app, count_queries):
    product = make_product(app)
    client.get(f"{API}/products/{product.id}")
    client.get(f"{API}/products?page_size=5")
    with count_queries() as counter:
        assert client.get(f"{API}/products/{product.id}").status_code == 200
        assert client.get(f"{API}/products?page_size=5").json["total"] == 1
    assert counter.count == 0


def test_read_write_read_shows_the_write_at_once(client, app, as_admin):
    product = make_product(app, name="Before")
    url = f"{API}/products/{product.id}"
    assert client.get(url).json["name"] == "Before"
    assert client.get(f"{API}/products").json["items"][0]["name"] == "Before"
    client.patch(url, headers=as_admin, json={"name": "After", "stock": 3})
    assert client.get(url).json["name"] == "After"
    assert client.get(url).json["stock"] == 3
    assert client.get(f"{API}/products").json["items"][0]["name"] == "After"


def test_writes_from_another_process_invalidate_too(client, app, other_app, as_admin):
    product = make_product(app, price=Decimal("5.00"))
    url = f"{API}/products/{product.id}"
    assert client.get(url).json["price"] == "5.00"
    # Another gunicorn process, with its own Flask app and cache client, takes the write.
    other_app().test_client().patch(url, headers=as_admin, json={"price": "6.00"})
    assert client.get(url).json["price"] == "6.00"


def test_cache_keys_cover_every_query_parameter(client, app):
    make_product(app, name="A")
    make_product(app, name="B")
    assert [p["name"] for p in client.get(f"{API}/products?sort=name").json["items"]] == ["A", "B"]
    assert [p["name"] for p in client.get(f"{API}/products?sort=-name").json["items"]] == ["B", "A"]
    assert client.get(f"{API}/products?sort=name&page_size=1").json["pages"] == 2


def test_admin_and_public_answers_are_cached_apart(client, app, as_admin):
    hidden = make_product(app, is_active=False)
    assert client.get(f"{API}/products/{hidden.id}", headers=as_admin).status_code == 200
    assert client.get(f"{API}/products/{hidden.id}").status_code == 404
    make_product(app, name="Shown")
    client.get(f"{API}/products?include_inactive=true", headers=as_admin)
    assert client.get(f"{API}/products").json["total"] == 1


def test_cache_outage_is_a_miss_not_an_error(app, other_app):
    product = make_product(app)
    broken = other_app(CACHE_REDIS_URL="redis://127.0.0.1:1/0")
    client = broken.test_client()
    assert client.get(f"{API}/products/{product.id}").status_code == 200
    assert client.get(f"{API}/products").json["total"] == 1


def test_lost_version_key_never_revives_old_entries(client, app, as_admin):
    product = make_product(app, name="Old")
    url = f"{API}/products/{product.id}"
    client.get(url)
    with app.app_context():
        bump(CATALOG)
    client.patch(url, headers=as_admin, json={"name": "New"})
    # Evict only the version key (as an LRU might); old entries stay in Redis.
    redis = Redis.from_url(app.config["CACHE_REDIS_URL"])
    for key in redis.scan_iter("shop:v:*"):
        redis.delete(key)
    assert client.get(url).json["name"] == "New"


def _counts_version(app):
    return Redis.from_url(app.config["CACHE_REDIS_URL"]).get(f"shop:v:{CATALOG_MATCHES}")


def _counted(counter):
    return [s for s in counter.statements if s.lstrip().upper().startswith("SELECT COUNT")]


def test_list_totals_are_cached_apart_and_follow_every_membership_change(
    client, app, as_admin, as_staff, count_queries, monkeypatch
):
    monkeypatch.setitem(app.config, "CACHE_RESPONSES", False)  # only the totals are cached
    product = make_product(app, stock=2)
    assert client.get(f"{API}/products?in_stock=true").json["total"] == 1
    with count_queries() as counter:
        assert client.get(f"{API}/products?in_stock=true").json["total"] == 1
    assert counter.count and not _counted(counter)

    # A new product: every total recomputed at once.
    created = client.post(
        f"{API}/products", headers=as_admin, json={"sku": "N-1", "name": "New", "price": "1.00"}
    )
    assert created.status_code == 201
    assert client.get(f"{API}/products").json["total"] == 2
    assert client.get(f"{API}/products?in_stock=true").json["total"] == 1

    # A sale that leaves stock above zero keeps the totals; one that empties it does not.
    before = _counts_version(app)
    movement = {"product_id": product.id, "type": "DAMAGE", "quantity": 1}
    assert (
        client.post(f"{API}/inventory/transactions", headers=as_staff, json=movement).status_code
        == 201
    )
    assert _counts_version(app) == before
    assert client.get(f"{API}/products?in_stock=true").json["total"] == 1
    assert (
        client.post(f"{API}/inventory/transactions", headers=as_staff, json=movement).status_code
        == 201
    )
    assert _counts_version(app) != before
    assert client.get(f"{API}/products?in_stock=true").json["total"] == 0
    assert client.get(f"{API}/products?in_stock=false").json["total"] == 2

    # Deactivating hides it from the public total (and its cached answer).
    client.patch(f"{API}/products/{product.id}", headers=as_admin, json={"is_active": False})
    assert client.get(f"{API}/products").json["total"] == 1
    assert client.get(f"{API}/products?include_inactive=true", headers=as_admin).json["total"] == 2


def test_response_cache_off_reads_every_page(client, app, count_queries, monkeypatch):
    monkeypatch.setitem(app.config, "CACHE_RESPONSES", False)
    product = make_product(app)
    client.get(f"{API}/products/{product.id}")
    with count_queries() as counter:
        assert client.get(f"{API}/products/{product.id}").status_code == 200
    assert counter.count > 0
