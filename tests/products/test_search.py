"""Full-text search with relevance, SKU fragments and suggestions (PostgreSQL)."""

from decimal import Decimal

from shop.products import search as search_module
from tests.factories import make_category, make_product

API = "/api/v1"


def search(client, query):
    return client.get(f"{API}/products?{query}").json["items"]


def test_name_match_ranks_above_description_match(client, app):
    in_description = make_product(
        app, name="Plain Mug", description="Pairs well with a laptop stand."
    )
    in_name = make_product(app, name="Laptop Sleeve", description="Neoprene.")
    make_product(app, name="Teapot", description="Porcelain.")
    assert [p["id"] for p in search(client, "q=laptop")] == [in_name.id, in_description.id]


def test_category_ranks_between_name_and_description(client, app):
    outdoor = make_category(app, "Outdoor")
    by_category = make_product(app, name="Folding Chair", category_id=outdoor.id)
    by_name = make_product(app, name="Outdoor Lantern")
    by_description = make_product(app, name="Rug", description="Fine for outdoor use.")
    ranked = [p["id"] for p in search(client, "q=outdoor")]
    assert ranked == [by_name.id, by_category.id, by_description.id]


def test_category_rename_reindexes_its_products(client, app, as_admin):
    category = make_category(app, "Misc")
    product = make_product(app, name="Folding Chair", category_id=category.id)
    assert search(client, "q=camping") == []
    client.patch(f"{API}/categories/{category.id}", headers=as_admin, json={"name": "Camping"})
    assert [p["id"] for p in search(client, "q=camping")] == [product.id]


def test_sku_and_sku_fragments_are_found(client, app):
    product = make_product(app, sku="ZX-4471-BLK", name="Mystery Box")
    make_product(app, sku="AB-1000", name="Other Box")
    assert [p["id"] for p in search(client, "q=ZX-4471-BLK")] == [product.id]
    assert [p["id"] for p in search(client, "q=4471")] == [product.id]


def test_prefix_words_and_all_words_required(client, app):
    steel = make_product(app, name="Steel Water Bottle")
    make_product(app, name="Glass Water Jug")
    assert {p["id"] for p in search(client, "q=bott")} == {steel.id}
    assert [p["id"] for p in search(client, "q=steel water")] == [steel.id]


def test_search_combines_with_filters_sort_and_hides_inactive(client, app):
    cheap = make_product(app, name="Desk Lamp", price=Decimal("15.00"))
    dear = make_product(app, name="Desk Lamp Pro", price=Decimal("95.00"))
    make_product(app, name="Desk Lamp Old", is_active=False)
    assert [p["id"] for p in search(client, "q=lamp&sort=-price")] == [dear.id, cheap.id]
    assert [p["id"] for p in search(client, "q=lamp&max_price=20")] == [cheap.id]
    assert client.get(f"{API}/products?q=lamp").json["total"] == 2


def test_search_survives_hostile_input(client, app):
    make_product(app, name="Widget")
    for q in ["'", "a & | !", "%_%", "\\", "():*", "widget:*", "<script>"]:
        response = client.get(f"{API}/products", query_string={"q": q})
        assert response.status_code == 200, q


def test_suggestions_prefix_first_then_typos(client, app):
    laptop = make_product(app, name="Laptop Stand")
    lamp = make_product(app, name="Lamp Shade")
    desk = make_product(app, name="Desk for Laptops")
    make_product(app, name="Laptop Retired", is_active=False)
    by_prefix = client.get(f"{API}/products/suggestions?q=lap").json
    assert by_prefix[0] == {"id": laptop.id, "name": "Laptop Stand"}
    # Prefix, then a word prefix, then the near miss; never the inactive product.
    assert [s["id"] for s in by_prefix] == [laptop.id, desk.id, lamp.id]
    typo = client.get(f"{API}/products/suggestions?q=lptop").json
    assert laptop.id in {s["id"] for s in typo}


def test_suggestions_limit_and_validation(client, app):
    for i in range(12):
        make_product(app, name=f"Candle {i:02d}")
    assert len(client.get(f"{API}/products/suggestions?q=candle").json) == 10
    assert client.get(f"{API}/products/suggestions").status_code == 422
    assert client.get(f"{API}/products/suggestions?q=" + "x" * 101).status_code == 422


def test_cached_ranking_pages_agree_with_live_ranking_and_follow_writes(
    client, app, as_admin, count_queries, monkeypatch
):
    monkeypatch.setattr(search_module, "RANKED_LIMIT", 3)  # pages 1-3 of 1 cached, then live
    monkeypatch.setitem(app.config, "CACHE_RESPONSES", False)
    made = [make_product(app, name=f"Lamp {i}", description="Bright.") for i in range(3)]
    made += [make_product(app, name="Shade", description=f"For a lamp, {i}.") for i in range(2)]

    def paged_and_live():
        pages = [search(client, f"q=lamp&page_size=1&page={n}") for n in range(1, 6)]
        live = search(client, "q=lamp&page_size=10")  # beyond the cached three: ranked live
        assert [p[0]["id"] for p in pages if p] == [p["id"] for p in live]
        return {p[0]["id"]: p[0] for p in pages if p}, [p["id"] for p in live]

    _, ranked = paged_and_live()
    assert set(ranked[:3]) == {p.id for p in made[:3]}  # name matches first
    with count_queries() as counter:  # a cached page: no ranking, no COUNT
        search(client, "q=lamp&page_size=1&page=2")
    assert not any("ts_rank" in s or "count(" in s for s in counter.statements)

    # Writes reorder, price or hide the cached results at once.
    shade = made[3]
    client.patch(f"{API}/products/{shade.id}", headers=as_admin, json={"name": "Lamp Shade"})
    _, ranked = paged_and_live()
    assert shade.id in ranked[:4] and made[4].id == ranked[4]
    client.patch(f"{API}/products/{made[0].id}", headers=as_admin, json={"price": "77.00"})
    by_id, _ = paged_and_live()
    assert by_id[made[0].id]["price"] == "77.00"
    client.patch(f"{API}/products/{made[1].id}", headers=as_admin, json={"is_active": False})
    by_id, ranked = paged_and_live()
    assert made[1].id not in by_id and len(ranked) == 4
    assert client.get(f"{API}/products?q=lamp").json["total"] == 4
