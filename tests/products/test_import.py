"""`POST /products/import` and `GET /jobs/{id}`: a CSV in the export's columns upserted by SKU
as a job (run here by a real RQ worker), batch by batch; bad rows fail alone; dry runs write
nothing; the export imports back unchanged; a job run again never applies a batch twice."""

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from shop.audit.models import AuditLog
from shop.db import db, unit_of_work, utcnow
from shop.products import import_batch, imports, transfer
from shop.products.models import CatalogImport, Category, Product, ProductVariant, StockMovement
from tests.factories import ledger_sum, make_category, make_product, make_variant, stock_of

API = "/api/v1"
HEADER = ",".join(transfer.COLUMNS)
BOUNDARY = "import-boundary-4d1f"


def upload(client, headers, data, *, dry_run=False, filename="products.csv"):
    if isinstance(data, str):
        data = data.encode()
    # Encoded here: the test client would spool a large body to a temporary file that a
    # 413 leaves open.
    part = f'Content-Disposition: form-data; name="file"; filename="{filename}"'
    body = (
        f"--{BOUNDARY}\r\n{part}\r\nContent-Type: text/csv\r\n\r\n".encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    return client.post(
        f"{API}/products/import" + ("?dry_run=true" if dry_run else ""),
        headers=headers,
        data=body,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )


def imported(client, run_jobs, headers, data, **kwargs):
    """Upload, let the worker run the job, answer the job."""
    response = upload(client, headers, data, **kwargs)
    assert response.status_code == 202, response.json
    job_id = response.json["job_id"]
    assert response.headers["Location"] == f"/api/v1/jobs/{job_id}"
    assert run_jobs() >= 1
    job = client.get(f"{API}/jobs/{job_id}", headers=headers)
    assert job.status_code == 200
    return job.json


def counts(app):
    with app.app_context():
        return tuple(
            db.session.scalar(select(func.count()).select_from(model))
            for model in (Product, ProductVariant, StockMovement, Category, AuditLog)
        )


def product(app, sku):
    with app.app_context():
        return db.session.scalar(select(Product).where(func.lower(Product.sku) == sku.lower()))


def exported(client, headers):
    return client.get(f"{API}/products/export", headers=headers).get_data(as_text=True)


def test_rows_create_products_variants_and_their_categories(app, client, run_jobs, as_admin):
    make_category(app, "Garden")
    job = imported(
        client,
        run_jobs,
        as_admin,
        f"""{HEADER}
RAKE-1,,Rake,Garden > Tools,9.50,12.00,7,3,true,true
TEE-1,,Tee,Clothes,15.00,,99,5,True,False
TEE-1-L,TEE-1,Large,ignored > here,16.00,,4,,True,
TEE-1-S,TEE-1,Small,,15.00,,0,,False,
""",
    )
    assert job["status"] == "succeeded" and job["dry_run"] is False
    assert (job["total"], job["processed"], job["created"], job["updated"]) == (4, 4, 4, 0)
    assert (job["failed"], job["errors"], job["error"]) == (0, [], None)
    assert job["finished_at"] and job["started_at"] and job["filename"] == "products.csv"
    rake = client.get(f"{API}/products/{product(app, 'RAKE-1').id}").json
    assert (rake["price"], rake["compare_at_price"], rake["stock"]) == ("9.50", "12.00", 7)
    assert (rake["low_stock_threshold"], rake["is_featured"]) == (3, True)
    assert rake["category"]["name"] == "Tools"
    with app.app_context():
        tools = db.session.get(Category, rake["category"]["id"])
        assert db.session.get(Category, tools.parent_id).name == "Garden"  # found, not made
    tee = client.get(f"{API}/products/{product(app, 'TEE-1').id}", headers=as_admin).json
    # A product selling by variants counts their stock, not its own row's.
    assert tee["stock"] == 4 and [v["sku"] for v in tee["variants"]] == ["TEE-1-L", "TEE-1-S"]
    assert tee["variants"][1]["is_active"] is False
    assert ledger_sum(app, tee["id"]) == 4 and ledger_sum(app, rake["id"]) == 7
    with app.app_context():
        types = db.session.scalars(select(StockMovement.type).distinct()).all()
    assert types == ["INITIAL"]


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("as_customer", 403), ("as_staff", 403), ("as_admin", 202)],
)
def test_only_admins_import(client, request, who, status):
    headers = request.getfixturevalue(who) if who else {}
    assert upload(client, headers, f"{HEADER}\n").status_code == status


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("as_customer", 403), ("as_staff", 403), ("as_admin", 200)],
)
def test_only_admins_read_jobs(client, request, as_admin, who, status):
    job_id = upload(client, as_admin, f"{HEADER}\n").json["job_id"]
    headers = request.getfixturevalue(who) if who else {}
    answer = client.get(f"{API}/jobs/{job_id}", headers=headers)
    assert answer.status_code == status
    if status == 200:
        assert answer.json["status"] == "queued" and answer.json["total"] is None


def test_an_unknown_job_is_404(client, as_admin):
    answer = client.get(f"{API}/jobs/999999", headers=as_admin)
    assert answer.status_code == 404 and answer.json["detail"] == "Job 999999 does not exist."


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"  \n", "The file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV text file"),
        ("sku,name\n".encode("utf-16"), "not a CSV text file"),
        (bytes(range(1, 256)) * 4, "Unknown columns"),
        (b"name,price\nRake,9.50\n", "The sku column is required"),
        (b"sku,name,colour\nA,B,red\n", "Unknown columns: 'colour'"),
        (b"sku,name,NAME\nA,B,C\n", "Columns named twice: name"),
    ],
)
def test_a_file_that_is_not_a_catalog_csv_is_422_at_once(app, client, as_admin, data, message):
    before = counts(app)
    response = upload(client, as_admin, data)
    assert response.status_code == 422
    assert message in response.json["errors"]["file"][0]
    assert counts(app) == before
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CatalogImport)) == 0


def test_the_file_is_required(client, as_admin):
    response = client.post(
        f"{API}/products/import", headers=as_admin, data={}, content_type="multipart/form-data"
    )
    assert response.status_code == 422 and "file" in str(response.json["errors"])
    assert client.post(f"{API}/products/import?dry_run=maybe", headers=as_admin).status_code == 422


def test_uploads_up_to_50_mib_and_413_beyond(client, as_admin):
    big = f"{HEADER}\n" + "A-1,,Name,,1.00,,1,1,true,false\n" + "\n" * (2 * 1024 * 1024)
    assert upload(client, as_admin, big).status_code == 202  # over the API's 1 MiB
    too_big = b"sku\n" + b"\n" * (50 * 1024 * 1024)
    response = upload(client, as_admin, too_big)
    assert response.status_code == 413 and response.json["status"] == 413
    # Elsewhere the limit stays 1 MiB.
    body = {"name": "x" * (1 << 20)}
    assert client.post(f"{API}/products", headers=as_admin, json=body).status_code == 413


def test_a_bad_row_fails_alone(app, client, run_jobs, as_admin):
    make_product(app, sku="TAKEN-V-PARENT", stock=0)
    make_variant(app, product(app, "TAKEN-V-PARENT"), sku="TAKEN-V")
    job = imported(
        client,
        run_jobs,
        as_admin,
        f"""{HEADER}
GOOD-1,,Good one,,9.99,,1,,,
BAD-PRICE,,Bad,,abc,,1,,,
NEGATIVE,,Bad,,-5.00,,1,,,
THIN,,Bad,,1.999,,1,,,
ZERO,,Bad,,0,,1,,,
BAD-STOCK,,Bad,,1.00,,lots,,maybe,
NO-NAME,,,,1.00,,1,,,
GOOD-1,,Again,,1.00,,1,,,
ORPHAN,NOBODY,Orphan,,1.00,,1,,,
TAKEN-V,,Product on a variant's SKU,,1.00,,1,,,
bad sku!,,Bad,,1.00,,1,,,
WIDE,,Bad,,1.00,,1,,,,extra
GOOD-2,,Good two,,1.00,0.50,,,,
""",
    )
    assert job["status"] == "succeeded"
    assert (job["processed"], job["created"], job["failed"]) == (13, 2, 11)
    errors = {(e["row"], e["field"]) for e in job["errors"]}
    assert errors == {
        (3, "price"), (4, "price"), (5, "price"), (6, "price"), (7, "stock"), (7, "is_active"),
        (8, "name"), (9, "sku"), (10, "product_sku"), (11, "sku"), (12, "sku"), (13, None),
    }  # fmt: skip
    messages = {(e["row"], e["field"]): e["message"] for e in job["errors"]}
    assert messages[(9, "sku")] == "GOOD-1 is on row 2 already: each SKU once per file."
    assert messages[(4, "price")] == messages[(6, "price")] == "Must be at least 0.01."
    assert "at most 10 digits, then two places" in messages[(5, "price")]
    assert "No product NOBODY" in messages[(10, "product_sku")]
    assert messages[(8, "name")] == "Required to create a product."
    assert product(app, "GOOD-1").name == "Good one" and product(app, "GOOD-2") is not None
    assert product(app, "BAD-PRICE") is None and product(app, "ORPHAN") is None


def test_a_latin_1_file_is_read_as_latin_1(app, client, run_jobs, as_admin):
    data = f"{HEADER}\nCAFE-1,,Café crème,Boissons,3.20,,5,,,\n".encode("latin-1")
    assert imported(client, run_jobs, as_admin, data)["created"] == 1
    assert product(app, "CAFE-1").name == "Café crème"


def test_utf_8_with_a_bom_and_only_some_columns(app, client, run_jobs, as_admin):
    make_product(app, sku="MUG-1", name="Mug", price=Decimal("5.00"), stock=3)
    data = "\ufeffSKU,Price\nmug-1,6.50\n".encode()
    job = imported(client, run_jobs, as_admin, data)
    assert (job["updated"], job["failed"]) == (1, 0)
    mug = product(app, "MUG-1")
    assert (mug.price, mug.name, mug.stock) == (Decimal("6.50"), "Mug", 3)


def test_upserts_by_sku_whatever_its_case(app, client, run_jobs, as_admin):
    rake = make_product(app, sku="RAKE-1", name="Rake", price=Decimal("9.50"), stock=4)
    before = counts(app)
    job = imported(client, run_jobs, as_admin, "sku,name,price\nrake-1,Garden rake,10.00\n")
    assert (job["created"], job["updated"], job["unchanged"]) == (0, 1, 0)
    again = client.get(f"{API}/products/{rake.id}").json
    assert (again["sku"], again["name"], again["price"]) == ("RAKE-1", "Garden rake", "10.00")
    products, variants, ledger, categories, _ = counts(app)
    assert (products, variants, ledger, categories) == before[:4]


def test_a_new_stock_is_one_adjustment_of_the_difference(app, client, run_jobs, as_admin):
    rake = make_product(app, sku="RAKE-1", stock=4)
    tee = make_product(app, sku="TEE-1", stock=0)
    large = make_variant(app, tee, sku="TEE-1-L", stock=5)
    csv_text = "sku,product_sku,stock\nRAKE-1,,10\nTEE-1-L,TEE-1,2\nTEE-1,,99\n"
    job = imported(client, run_jobs, as_admin, csv_text)
    assert (job["updated"], job["unchanged"]) == (2, 1)  # TEE-1's own stock is its variants'
    with app.app_context():
        moves = db.session.execute(
            select(StockMovement.product_id, StockMovement.variant_id, StockMovement.quantity)
            .where(StockMovement.type == "ADJUSTMENT")
            .order_by(StockMovement.id)
        ).all()
    assert moves == [(rake.id, None, 6), (tee.id, large.id, -3)]
    assert stock_of(app, rake.id) == ledger_sum(app, rake.id) == 10
    assert stock_of(app, tee.id) == ledger_sum(app, tee.id) == 2
    # The same file again changes nothing: no row counts as updated, no ledger row.
    before = counts(app)
    again = imported(client, run_jobs, as_admin, csv_text)
    assert (again["updated"], again["unchanged"], again["created"]) == (0, 3, 0)
    assert counts(app) == before


def test_the_export_imports_back_unchanged(app, client, run_jobs, as_admin, as_staff):
    garden = make_category(app, "Garden")
    tools = make_category(app, "Tools", parent_id=garden.id)
    rake = make_product(app, sku="RAKE-1", name="Rake", category_id=tools.id, stock=0,
                        price=Decimal("9.50"), compare_at_price=Decimal("12.00"))  # fmt: skip
    make_variant(app, rake, sku="RAKE-1-L", name="Large", stock=4)
    make_product(app, sku="EVIL-1", name='=HYPERLINK("http://evil.example","x")', stock=2)
    make_product(app, sku="NEG-1", name="-10% off", is_active=False, low_stock_threshold=0)
    text = exported(client, as_staff)
    assert "'=HYPERLINK" in text and "'-10% off" in text
    before = counts(app)
    job = imported(client, run_jobs, as_admin, text)
    assert (job["unchanged"], job["updated"], job["created"], job["failed"]) == (4, 0, 0, 0)
    assert counts(app) == before
    assert product(app, "EVIL-1").name == '=HYPERLINK("http://evil.example","x")'
    # Into a catalog without those products: the same catalog again.
    with app.app_context(), unit_of_work() as session:
        session.execute(StockMovement.__table__.delete())
        session.execute(ProductVariant.__table__.delete())
        session.execute(Product.__table__.delete())
    job = imported(client, run_jobs, as_admin, text)
    assert (job["created"], job["failed"]) == (4, 0)
    assert exported(client, as_staff) == text
    assert product(app, "NEG-1").name == "-10% off"


def test_a_dry_run_checks_every_row_and_writes_nothing(app, client, run_jobs, as_admin):
    make_product(app, sku="RAKE-1", stock=4)
    before = counts(app)
    job = imported(
        client,
        run_jobs,
        as_admin,
        f"""{HEADER}
RAKE-1,,Rake,New > Category,9.50,,10,,,
NEW-1,,New,,1.00,,3,,,
NEW-1-L,NEW-1,Large,,1.00,,3,,,
BAD-1,,Bad,,abc,,1,,,
""",
        dry_run=True,
    )
    assert job["dry_run"] is True and job["status"] == "succeeded"
    assert (job["created"], job["updated"], job["failed"]) == (2, 1, 1)
    assert [(e["row"], e["field"]) for e in job["errors"]] == [(5, "price")]
    assert counts(app) == before
    assert stock_of(app, product(app, "RAKE-1").id) == 4


def test_a_write_shows_at_once_in_cached_answers(app, client, run_jobs, as_admin):
    rake = make_product(app, sku="RAKE-1", price=Decimal("9.50"))
    assert client.get(f"{API}/products/{rake.id}").json["price"] == "9.50"  # now cached
    imported(client, run_jobs, as_admin, "sku,price\nRAKE-1,11.00\n")
    assert client.get(f"{API}/products/{rake.id}").json["price"] == "11.00"


def test_a_batch_is_one_audit_entry(app, client, run_jobs, admin, as_admin, monkeypatch):
    monkeypatch.setattr(imports, "BATCH", 2)
    make_product(app, sku="OLD-1", price=Decimal("1.00"))
    job = imported(
        client,
        run_jobs,
        as_admin,
        f"""{HEADER}
OLD-1,,Old,,2.00,,,,,
NEW-1,,New,,1.00,,,,,
NEW-2,,New,,1.00,,,,,
""",
    )
    entries = client.get(f"{API}/audit-logs?action=catalog.imported", headers=as_admin).json
    changes = sorted((e["changes"]["rows"], e["target_id"]) for e in entries["items"])
    assert changes == [([2, 3], job["id"]), ([4, 4], job["id"])]
    assert {e["actor_email"] for e in entries["items"]} == {admin.email}


def start(app, text, *, dry_run=False):
    with app.app_context():
        job = imports.queue_import(None, text.encode(), "t.csv", dry_run=dry_run, dispatch=False)
        return job.id


def job_of(app, job_id):
    with app.app_context():
        return db.session.get(CatalogImport, job_id)


def test_a_job_run_again_after_a_crash_goes_on_from_its_last_batch(app, monkeypatch):
    monkeypatch.setattr(imports, "BATCH", 2)
    rows = "".join(f"P-{i},,Product {i},,1.00,,{i + 1},,,\n" for i in range(6))
    job_id = start(app, f"{HEADER}\n{rows}")
    real, calls = import_batch.apply_batch, []

    def crash_on_the_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(imports, "apply_batch", crash_on_the_second_batch)
    with app.app_context(), pytest.raises(RuntimeError):
        imports.run_import(job_id)
    job = job_of(app, job_id)
    assert (job.status, job.processed, job.next_row, job.created) == ("running", 2, 4, 2)
    assert "worker killed" in job.error
    with app.app_context():
        assert imports.run_import(job_id)["created"] == 6
        assert imports.run_import(job_id) is None  # done: a late retry does nothing
        ledger = db.session.scalar(select(func.count()).select_from(StockMovement))
        assert ledger == db.session.scalar(select(func.count()).select_from(Product)) == 6
    job = job_of(app, job_id)
    assert (job.status, job.processed, job.attempts, job.error) == ("succeeded", 6, 2, None)
    with app.app_context():  # the upload is not kept once done
        assert db.session.scalar(select(CatalogImport.file)) is None


def test_a_run_that_finds_its_batch_done_by_another_stops(app, monkeypatch):
    monkeypatch.setattr(imports, "BATCH", 1)
    job_id = start(app, f"{HEADER}\nA-1,,A,,1.00,,1,,,\nB-1,,B,,1.00,,1,,,\n")

    def overtaken(rows, total):
        # Another run applied the next batch meanwhile.
        with unit_of_work() as session:
            session.execute(update(CatalogImport).values(next_row=CatalogImport.next_row + 1))

    with app.app_context():
        assert imports.run_import(job_id, on_batch=overtaken) is None
        assert db.session.scalar(select(func.count()).select_from(Product)) == 1


def test_progress_grows_batch_by_batch(app, monkeypatch):
    monkeypatch.setattr(imports, "BATCH", 2)
    rows = "".join(f"P-{i},,Product {i},,1.00,,1,,,\n" for i in range(5))
    job_id = start(app, f"{HEADER}\n{rows}")
    seen = []

    def progress(rows, total):
        seen.append((rows, total, job_of(app, job_id).processed))

    with app.app_context():
        imports.run_import(job_id, on_batch=progress)
    assert seen == [(2, 5, 2), (2, 5, 4), (1, 5, 5)]


def test_a_variant_stays_in_its_products_batch(app, monkeypatch):
    monkeypatch.setattr(imports, "BATCH", 1)
    rows = "T-1,,Tee,,9.00,,,,,\nT-1-L,T-1,L,,9.00,,2,,,\nT-1-S,T-1,S,,9.00,,3,,,\n"
    job_id = start(app, f"{HEADER}\n{rows}")
    seen = []
    with app.app_context():
        imports.run_import(job_id, on_batch=lambda rows, total: seen.append(rows))
    assert seen == [3]
    assert product(app, "T-1").stock == 5


def test_jobs_left_behind_are_sent_again(app, client, run_jobs, as_admin):
    job_id = start(app, f"{HEADER}\nA-1,,A,,1.00,,1,,,\n")  # queued, never handed over
    with app.app_context():
        assert imports.resume_imports() == {"resumed": 0}  # not yet: within its lease
        with unit_of_work() as session:
            session.execute(update(CatalogImport).values(updated_at=utcnow() - timedelta(hours=1)))
        assert imports.resume_imports() == {"resumed": 1}
    assert run_jobs() >= 1
    assert job_of(app, job_id).status == "succeeded" and product(app, "A-1") is not None


def test_a_job_that_keeps_failing_stops(app):
    job_id = start(app, f"{HEADER}\nA-1,,A,,1.00,,1,,,\n")
    with app.app_context(), unit_of_work() as session:
        session.execute(update(CatalogImport).values(attempts=imports.MAX_ATTEMPTS, error="boom"))
    with app.app_context():
        assert imports.run_import(job_id) is None
    job = job_of(app, job_id)
    assert job.status == "failed" and job.error == "Stopped after 5 attempts: boom"


def test_the_cli_imports_with_a_progress_bar(app, tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_text(f"{HEADER}\nA-1,,A,,1.00,,1,,,\nB-1,,B,,abc,,1,,,\n")
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["products", "import", str(path), "--dry-run"])
    assert dry.exit_code == 1 and "row 3, price:" in dry.output
    assert product(app, "A-1") is None
    result = runner.invoke(args=["products", "import", str(path)])
    assert (
        result.exit_code == 1 and '"created": 1' in result.output and '"failed": 1' in result.output
    )
    assert product(app, "A-1") is not None
    path.write_text(f"{HEADER}\nA-1,,A,,2.00,,1,,,\n")
    assert runner.invoke(args=["products", "import", str(path)]).exit_code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("colour\nred\n")
    refused = runner.invoke(args=["products", "import", str(bad)])
    assert refused.exit_code == 1 and "Unknown columns" in refused.output
