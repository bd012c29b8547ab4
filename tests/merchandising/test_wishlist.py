"""The wishlist: one per customer, idempotent adds, and an email to each customer waiting for
a product when it is back in stock (once per return, through the outbox)."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shop.products.flash_sales import announce_started
from tests.conftest import settle_events, text_of
from tests.factories import headers_for, make_category, make_product, make_user, make_variant

API = "/api/v1"


def put(client, headers, product_id):
    return client.put(f"{API}/wishlist/{product_id}", headers=headers)


def restock(client, headers, product, quantity=5, variant=None):
    body = {"product_id": product.id, "type": "IN", "quantity": quantity}
    if variant is not None:
        body["variant_id"] = variant.id
    response = client.post(f"{API}/inventory/transactions", headers=headers, json=body)
    assert response.status_code == 201, response.json


def test_add_list_and_remove(client, app, as_customer):
    lamp = make_product(app, name="Lamp", price=Decimal("30.00"))
    rug = make_product(app, name="Rug")
    first = put(client, as_customer, lamp.id)
    assert first.status_code == 201
    assert first.json["product"]["name"] == "Lamp" and first.json["added_at"]
    again = put(client, as_customer, lamp.id)
    assert again.status_code == 200 and again.json["added_at"] == first.json["added_at"]
    assert put(client, as_customer, rug.id).status_code == 201
    listed = client.get(f"{API}/wishlist", headers=as_customer).json
    assert [i["product"]["name"] for i in listed["items"]] == ["Rug", "Lamp"]
    assert listed["total"] == 2 and listed["items"][1]["product"]["price"] == "30.00"
    assert client.delete(f"{API}/wishlist/{rug.id}", headers=as_customer).status_code == 204
    assert client.delete(f"{API}/wishlist/{rug.id}", headers=as_customer).status_code == 204
    listed = client.get(f"{API}/wishlist", headers=as_customer).json
    assert [i["product"]["id"] for i in listed["items"]] == [lamp.id]


def test_each_customer_has_their_own(client, app, as_customer):
    other = headers_for(app, make_user(app, email="other@example.com"))
    lamp = make_product(app)
    put(client, as_customer, lamp.id)
    assert client.get(f"{API}/wishlist", headers=other).json["items"] == []
    assert client.delete(f"{API}/wishlist/{lamp.id}", headers=other).status_code == 204
    assert client.get(f"{API}/wishlist", headers=as_customer).json["total"] == 1


def test_roles_and_bad_input(client, app, as_customer, as_admin):
    lamp = make_product(app)
    assert client.get(f"{API}/wishlist").status_code == 401
    assert client.put(f"{API}/wishlist/{lamp.id}").status_code == 401
    assert client.delete(f"{API}/wishlist/{lamp.id}").status_code == 401
    assert put(client, as_customer, 999_999).status_code == 404
    assert client.delete(f"{API}/wishlist/999999", headers=as_customer).status_code == 404
    assert put(client, as_customer, 0).status_code == 404
    assert client.get(f"{API}/wishlist?page_size=0", headers=as_customer).status_code == 422
    assert client.get(f"{API}/wishlist?sort=name", headers=as_customer).status_code == 422
    retired = make_product(app, is_active=False)
    assert put(client, as_customer, retired.id).status_code == 404
    assert put(client, as_admin, lamp.id).status_code == 201  # staff and admins have one too


def test_a_product_taken_off_sale_leaves_the_list(client, app, as_customer, as_admin):
    lamp = make_product(app)
    put(client, as_customer, lamp.id)
    client.patch(f"{API}/products/{lamp.id}", headers=as_admin, json={"is_active": False})
    assert client.get(f"{API}/wishlist", headers=as_customer).json["total"] == 0


def test_the_list_s_query_count_does_not_grow_with_its_page(
    client, app, as_customer, count_queries
):
    for i in range(6):
        product = make_product(app, name=f"P{i}", stock=0)
        make_variant(app, product)
        put(client, as_customer, product.id)
    counts = []
    for size in (1, 6):
        with count_queries() as counter:
            page = client.get(f"{API}/wishlist?page_size={size}", headers=as_customer).json
        assert len(page["items"]) == size and page["items"][0]["product"]["variants"]
        counts.append(counter.count)
    assert counts[0] == counts[1]


def test_back_in_stock_emails_each_waiting_customer_once_per_return(
    client, app, as_staff, mailbox, run_jobs
):
    cleo = make_user(app, email="cleo@example.com", first_name="Cleo")
    dan = make_user(app, email="dan@example.com")
    lamp = make_product(app, name="Desk lamp", stock=0, price=Decimal("30.00"))
    for user in (cleo, dan):
        put(client, headers_for(app, user), lamp.id)
    make_user(app, email="nobody@example.com")  # waits for nothing
    run_jobs()
    mailbox.messages.clear()
    restock(client, as_staff, lamp)
    restock(client, as_staff, lamp)  # still in stock: not back again
    run_jobs()
    run_jobs()  # the emails the subscriber queued
    [to_cleo] = mailbox.to("cleo@example.com")
    assert len(mailbox.to("dan@example.com")) == 1 and mailbox.to("nobody@example.com") == []
    assert to_cleo["Subject"].startswith("Back in stock: Desk lamp")
    assert "Hello Cleo" in text_of(to_cleo) and "30.00" in text_of(to_cleo)
    # Sold out and back again: a second occurrence, a second email.
    client.post(
        f"{API}/inventory/transactions",
        headers=as_staff,
        json={"product_id": lamp.id, "type": "OUT", "quantity": 10},
    )
    restock(client, as_staff, lamp, 2)
    run_jobs()
    run_jobs()
    assert len(mailbox.to("cleo@example.com")) == 2


def test_stock_set_by_a_product_edit_counts_as_back(
    client, app, as_customer, customer, as_admin, mailbox, run_jobs
):
    lamp = make_product(app, name="Lamp", stock=0)
    put(client, as_customer, lamp.id)
    client.patch(f"{API}/products/{lamp.id}", headers=as_admin, json={"stock": 3})
    run_jobs()
    run_jobs()
    assert len(mailbox.to(customer.email)) == 1


def test_a_markdown_emails_each_waiting_customer_once_per_occurrence(
    client, app, as_admin, mailbox, run_jobs
):
    lamp = make_product(app, name="Lamp", price=Decimal("50.00"))
    cleo = headers_for(app, make_user(app, email="cleo@example.com", first_name="Cleo"))
    put(client, cleo, lamp.id)

    def edit(**body):
        response = client.patch(f"{API}/products/{lamp.id}", headers=as_admin, json=body)
        assert response.status_code == 200, response.json
        run_jobs()
        run_jobs()  # the emails the subscriber queued

    edit(price="40.00", compare_at_price="50.00")
    [email] = mailbox.to("cleo@example.com")
    assert email["Subject"] == "On sale: Lamp"
    assert "Hello Cleo" in text_of(email) and "on sale at 40.00 (was 50.00)" in text_of(email)
    edit(price="35.00")  # still on sale: the same occurrence
    edit(name="Lamp II")
    assert len(mailbox.to("cleo@example.com")) == 1
    edit(compare_at_price=None)
    edit(compare_at_price="45.00")  # on sale again: a new occurrence
    assert len(mailbox.to("cleo@example.com")) == 2
    settle_events(app)
    events = client.get(f"{API}/events?type=product.on_sale", headers=as_admin).json["items"]
    assert [e["data"] for e in events] == [{"product_id": lamp.id, "flash_sale_id": None}] * 2


def test_a_flash_sale_starting_emails_the_customers_waiting_for_its_products(
    client, app, as_admin, mailbox, run_jobs
):
    garden = make_category(app, "Garden")
    tools = make_category(app, "Tools", parent_id=garden.id)
    spade = make_product(app, name="Spade", category_id=tools.id)
    lamp = make_product(app, name="Lamp")
    sofa = make_product(app, name="Sofa")
    cleo = headers_for(app, make_user(app, email="cleo@example.com"))
    dan = headers_for(app, make_user(app, email="dan@example.com"))
    for headers, product in ((cleo, spade), (cleo, lamp), (dan, sofa)):
        put(client, headers, product.id)
    start = datetime.now(UTC) + timedelta(seconds=1)
    body = {"name": "Spring", "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(), "discount_percent": 30,
            "product_ids": [lamp.id], "category_ids": [garden.id]}  # fmt: skip
    sale = client.post(f"{API}/flash-sales", headers=as_admin, json=body).json
    with app.app_context():
        assert announce_started() == {"announced": []}  # not started yet
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()))
    with app.app_context():
        assert announce_started() == {"announced": [sale["id"]]}
        assert announce_started() == {"announced": []}  # once per sale
    run_jobs()
    run_jobs()
    subjects = sorted(m["Subject"] for m in mailbox.to("cleo@example.com"))
    assert subjects == ["On sale: Lamp", "On sale: Spade"]
    assert '30% off in our flash sale "Spring"' in text_of(mailbox.to("cleo@example.com")[0])
    assert mailbox.to("dan@example.com") == []
