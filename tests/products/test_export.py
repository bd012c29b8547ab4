"""`GET /products/export`: every product and variant as CSV, streamed, staff only; category
paths; cells that a spreadsheet would run as formulas are kept text."""

import csv
import io
from decimal import Decimal

import pytest

from shop.products import transfer
from tests.factories import make_category, make_product, make_variant

API = "/api/v1"


def exported(client, headers):
    response = client.get(f"{API}/products/export?format=csv", headers=headers)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.is_streamed
    assert 'filename="products.csv"' in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_products_and_variants_with_their_category_paths(client, app, as_staff):
    garden = make_category(app, "Garden")
    tools = make_category(app, "Tools", parent_id=garden.id)
    rake = make_product(
        app, sku="RAKE-1", name="Rake", category_id=tools.id, price=Decimal("9.50"), stock=0,
        is_featured=True,
    )  # fmt: skip
    make_variant(app, rake, sku="RAKE-1-L", name="Large", price=Decimal("11.00"), stock=4)
    make_product(app, sku="LAMP-1", name="Lamp", price=Decimal("30.00"), stock=7, is_active=False)
    rows = exported(client, as_staff)
    assert [r["sku"] for r in rows] == ["RAKE-1", "RAKE-1-L", "LAMP-1"]
    rake_row, large, lamp = rows
    assert list(rake_row) == list(transfer.COLUMNS)
    assert rake_row["category"] == "Garden > Tools" and rake_row["product_sku"] == ""
    assert (rake_row["stock"], rake_row["is_featured"]) == ("4", "True")  # the variants' sum
    assert large["product_sku"] == "RAKE-1" and large["price"] == "11.00"
    assert (large["name"], large["stock"], large["category"]) == ("Large", "4", "Garden > Tools")
    assert (lamp["is_active"], lamp["category"], lamp["price"]) == ("False", "", "30.00")


def test_formula_cells_are_exported_as_text(client, app, as_staff):
    make_product(app, sku="EVIL-1", name='=HYPERLINK("http://evil.example","click")')
    make_product(app, sku="FINE-1", name="A = B")
    names = {r["sku"]: r["name"] for r in exported(client, as_staff)}
    assert names["EVIL-1"] == '\'=HYPERLINK("http://evil.example","click")'
    assert names["FINE-1"] == "A = B"


def test_many_products_stream_in_batches(client, app, as_staff, monkeypatch):
    monkeypatch.setattr(transfer, "BATCH", 3)
    for i in range(8):
        make_product(app, sku=f"MANY-{i}", name=f"Item {i}")
    with app.test_request_context(), app.app_context():
        chunks = list(transfer.export_csv())
    assert len(chunks) >= 3  # the header and rows went out a batch at a time
    assert len(exported(client, as_staff)) == 8


@pytest.mark.parametrize("who", [None, "as_customer"])
def test_only_staff_export(client, request, who):
    headers = request.getfixturevalue(who) if who else {}
    status = client.get(f"{API}/products/export", headers=headers).status_code
    assert status == (403 if who else 401)


def test_bad_queries_are_422(client, as_staff):
    assert client.get(f"{API}/products/export?format=xlsx", headers=as_staff).status_code == 422
    assert client.get(f"{API}/products/export?x=1", headers=as_staff).status_code == 422
