"""The catalog import on the embedded default: SQLite, no Redis, the job run inline right
after the upload's commit (the stock moved row by row through change_stock)."""

import io

import pytest

from shop.products.transfer import COLUMNS
from shop.security import Role
from tests.factories import headers_for, make_user

pytestmark = pytest.mark.embedded
API = "/api/v1"
HEADER = ",".join(COLUMNS)


def test_an_import_runs_inline_and_upserts(embedded_app):
    client = embedded_app.test_client()
    admin = headers_for(embedded_app, make_user(embedded_app, role=Role.ADMIN))

    def imported(text, **query):
        response = client.post(
            f"{API}/products/import",
            query_string=query,
            headers=admin,
            data={"file": (io.BytesIO(text.encode("latin-1")), "catalog.csv")},
            content_type="multipart/form-data",
        )
        assert response.status_code == 202
        return client.get(response.headers["Location"], headers=admin).json

    text = f"""{HEADER}
TEE-1,,Tee caf\u00e9,Clothes > Tops,15.00,,0,5,true,false
TEE-1-L,TEE-1,Large,,16.00,,4,,true,
RAKE-1,,Rake,,9.50,,7,,,
BAD-1,,Bad,,abc,,1,,,
"""
    dry = imported(text, dry_run="true")
    assert (dry["status"], dry["created"], dry["failed"]) == ("succeeded", 3, 1)
    assert client.get(f"{API}/products", headers=admin).json["total"] == 0
    job = imported(text)  # inline: done by the time the upload is answered
    assert (job["status"], job["created"], job["failed"]) == ("succeeded", 3, 1)
    assert [(e["row"], e["field"]) for e in job["errors"]] == [(5, "price")]
    products = {p["sku"]: p for p in client.get(f"{API}/products", headers=admin).json["items"]}
    assert products["TEE-1"]["name"] == "Tee caf\u00e9" and products["TEE-1"]["stock"] == 4
    assert products["TEE-1"]["category"]["name"] == "Tops"
    again = imported(f"{HEADER}\nrake-1,,Rake,,9.50,,3,,,\nTEE-1-L,TEE-1,Large,,16.00,,6,,,\n")
    assert (again["updated"], again["unchanged"]) == (2, 0)
    moves = client.get(f"{API}/inventory/transactions?type=ADJUSTMENT", headers=admin).json
    assert sorted(m["quantity"] for m in moves["items"]) == [-4, 2]
