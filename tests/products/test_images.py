"""Product and variant images (MEDIA_STORAGE=local): uploads re-encoded without metadata, with
thumbnails; roles; bad files refused with 422 or 413, never 500; positions; files served with
long cache headers and removed after the commit that lets go of them."""

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from shop.audit.models import AuditLog
from shop.db import db
from shop.products.models import ProductImage
from tests.factories import make_product, make_variant
from tests.products.images import (
    API,
    encoded,
    fetch,
    jpeg_with_gps,
    opened,
    png_header,
    upload,
)


def images_path(product):
    return f"products/{product.id}/images"


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_an_upload_is_stored_with_thumbnails_and_answered_everywhere(client, app, as_admin):
    product = make_product(app, image_url="https://cdn.example/old.png")
    made = upload(client, as_admin, images_path(product), encoded("PNG", (800, 600)), alt="Front")
    assert made.status_code == 201, made.json
    image = made.json
    assert made.headers["Location"] == f"{API}/products/{product.id}/images/{image['id']}"
    assert [image[k] for k in ("width", "height", "alt", "position")] == [800, 600, "Front", 1]
    assert image["variant_id"] is None
    assert image["url"].startswith("http://127.0.0.1:5000/api/v1/media/products/")

    stored = fetch(client, image["url"])
    assert stored.status_code == 200 and stored.mimetype == "image/png"
    assert stored.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert opened(stored.data).size == (800, 600)
    thumbnail = opened(fetch(client, image["thumbnail_url"]).data)
    assert thumbnail.format == "PNG" and thumbnail.size == (400, 300)
    webp = fetch(client, image["thumbnail_webp_url"])
    assert webp.mimetype == "image/webp" and opened(webp.data).size == (400, 300)

    body = client.get(f"{API}/products/{product.id}").json
    assert body["images"] == [image] and body["image_url"] == image["url"]
    listed = client.get(f"{API}/{images_path(product)}").json
    assert listed["items"] == [image] and listed["total"] == 1 and "links" in listed
    assert client.get(made.headers["Location"]).json == image
    assert client.get(f"{API}/products").json["items"][0]["image_url"] == image["url"]
    with app.app_context():
        entry = db.session.scalar(
            select(AuditLog).where(AuditLog.action == "product_image.created")
        )
    assert entry.target_id == image["id"] and entry.changes["alt"] == "Front"


def test_without_images_image_url_is_the_one_given(client, app):
    product = make_product(app, image_url="https://cdn.example/tee.png")
    body = client.get(f"{API}/products/{product.id}").json
    assert body["images"] == [] and body["image_url"] == "https://cdn.example/tee.png"


def test_the_stored_jpeg_has_no_exif_or_gps_and_stands_upright(client, app, as_admin):
    product = make_product(app)
    made = upload(client, as_admin, images_path(product), jpeg_with_gps((1200, 800)), "cam.jpg")
    assert made.status_code == 201, made.json
    assert (made.json["width"], made.json["height"]) == (800, 1200)  # the orientation applied
    for url in (made.json["url"], made.json["thumbnail_url"], made.json["thumbnail_webp_url"]):
        data = fetch(client, url).data
        image = opened(data)
        assert dict(image.getexif()) == {} and not image.getexif().get_ifd(0x8825)
        assert b"Exif" not in data and b"PhoneMaker" not in data
    assert opened(fetch(client, made.json["thumbnail_url"]).data).size == (267, 400)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", "really-a-pdf.png"),
        (encoded("JPEG", (640, 480))[:1500], "truncated.jpg"),
        (encoded("GIF", (64, 64)), "animated.gif"),  # decodes, but is not one of the three
        (b"", "empty.png"),
        (png_header(7000, 6000), "42-megapixels.png"),  # over IMAGE_MAX_PIXELS (40 M)
    ],
)
def test_files_that_are_not_sound_jpeg_png_or_webp_are_a_422(client, app, as_admin, data, name):
    product = make_product(app)
    response = upload(client, as_admin, images_path(product), data, name)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json" and "file" in response.json["errors"]
    assert client.get(f"{API}/products/{product.id}").json["images"] == []


def test_a_decompression_bomb_is_refused_from_its_header_at_once(client, app, as_admin):
    product = make_product(app)
    bomb = png_header(20_000, 20_000)  # 400 million pixels in 60 bytes
    started = time.monotonic()
    response = upload(client, as_admin, images_path(product), bomb, "bomb.png")
    assert response.status_code == 422 and "pixels" in response.json["errors"]["file"][0]
    assert time.monotonic() - started < 1


def test_missing_or_misnamed_parts_and_bodies_are_refused(client, app, as_admin):
    product = make_product(app)
    path = images_path(product)
    assert upload(client, as_admin, path, None, alt="x").status_code == 422
    as_text = client.post(
        f"{API}/{path}",
        headers=as_admin,
        data={"file": "not a file"},
        content_type="multipart/form-data",
    )
    assert as_text.status_code == 422 and set(as_text.json["errors"]) == {"file"}
    for fields in ({"position": "0"}, {"position": "x"}, {"alt": "a" * 301}, {"colour": "red"}):
        response = upload(client, as_admin, path, encoded(), **fields)
        assert response.status_code == 422, fields
    json_body = client.post(f"{API}/{path}", headers=as_admin, json={"file": "x"})
    assert json_body.status_code == 415


def test_a_file_over_10_mib_is_a_413_and_one_under_is_taken(client, app, as_admin):
    product = make_product(app)
    path = images_path(product)
    too_large = upload(client, as_admin, path, b"\x00" * (10 * 1024 * 1024 + 1), "big.png")
    assert too_large.status_code == 413 and too_large.mimetype == "application/problem+json"
    # A file of 2 MiB (past the 1 MiB of a JSON body): a PNG of noise does not compress.
    noise = encoded("PNG", (800, 800), compress_level=0)
    assert len(noise) > 2 * 1024 * 1024
    assert upload(client, as_admin, path, noise).status_code == 201


def test_image_writes_need_admin_and_reads_are_for_anyone(
    client, app, as_admin, as_customer, as_staff
):
    product = make_product(app)
    made = upload(client, as_admin, images_path(product), encoded()).json
    one = f"{API}/{images_path(product)}/{made['id']}"
    for headers, status in ((None, 401), (as_customer, 403), (as_staff, 403)):
        kwargs = {"headers": headers} if headers else {}
        assert upload(client, headers, images_path(product), encoded()).status_code == status
        assert client.patch(one, json={"alt": "x"}, **kwargs).status_code == status
        assert client.delete(one, **kwargs).status_code == status
        assert client.get(one, **kwargs).status_code == 200
        assert client.get(f"{API}/{images_path(product)}", **kwargs).status_code == 200
    assert client.get(f"{API}/{images_path(product)}").json["total"] == 1


def test_unknown_products_and_images_and_another_products_image_are_404(client, app, as_admin):
    product, other = make_product(app), make_product(app)
    theirs = upload(client, as_admin, images_path(other), encoded()).json["id"]
    assert upload(client, as_admin, "products/999999/images", encoded()).status_code == 404
    assert client.get(f"{API}/products/999999/images").status_code == 404
    for image_id in (999999, theirs):
        one = f"{API}/{images_path(product)}/{image_id}"
        assert client.get(one).status_code == 404
        assert client.patch(one, headers=as_admin, json={"alt": "x"}).status_code == 404
        assert client.delete(one, headers=as_admin).status_code == 404
    assert client.get(f"{API}/{images_path(other)}").json["total"] == 1


def test_an_inactive_products_images_are_for_admins(client, app, as_admin):
    product = make_product(app, is_active=False)
    assert upload(client, as_admin, images_path(product), encoded()).status_code == 201
    assert client.get(f"{API}/{images_path(product)}").status_code == 404
    assert client.get(f"{API}/{images_path(product)}", headers=as_admin).json["total"] == 1


def positions(client, product):
    items = client.get(f"{API}/{images_path(product)}").json["items"]
    return [(item["alt"], item["position"]) for item in items]


def test_images_keep_positions_one_to_n_through_inserts_moves_and_deletes(client, app, as_admin):
    product = make_product(app)
    path = images_path(product)
    ids = {alt: upload(client, as_admin, path, encoded(), alt=alt).json["id"] for alt in "abc"}
    assert positions(client, product) == [("a", 1), ("b", 2), ("c", 3)]
    ids["d"] = upload(client, as_admin, path, encoded(), alt="d", position=1).json["id"]
    assert positions(client, product) == [("d", 1), ("a", 2), ("b", 3), ("c", 4)]
    ids["e"] = upload(client, as_admin, path, encoded(), alt="e", position=50).json["id"]
    assert positions(client, product)[-1] == ("e", 5)

    moved = client.patch(f"{API}/{path}/{ids['d']}", headers=as_admin, json={"position": 3})
    assert moved.status_code == 200 and moved.json["position"] == 3
    assert positions(client, product) == [("a", 1), ("b", 2), ("d", 3), ("c", 4), ("e", 5)]
    last = client.patch(f"{API}/{path}/{ids['a']}", headers=as_admin, json={"position": 50})
    assert last.json["position"] == 5
    assert client.delete(f"{API}/{path}/{ids['b']}", headers=as_admin).status_code == 204
    assert positions(client, product) == [("d", 1), ("c", 2), ("e", 3), ("a", 4)]
    body = client.get(f"{API}/products/{product.id}").json
    assert [i["alt"] for i in body["images"]] == ["d", "c", "e", "a"]
    assert body["image_url"] == body["images"][0]["url"]
    for bad in ({"position": 0}, {"position": "2"}, {"alt": "a" * 301}, {"url": "x"}):
        assert (
            client.patch(f"{API}/{path}/{ids['a']}", headers=as_admin, json=bad).status_code == 422
        )


def test_variant_images(client, app, as_admin):
    product = make_product(app, stock=0)
    variant, other_variant = (
        make_variant(app, product),
        make_variant(app, make_product(app, stock=0)),
    )
    path = images_path(product)
    made = upload(client, as_admin, path, encoded(), variant_id=variant.id)
    assert made.status_code == 201 and made.json["variant_id"] == variant.id
    upload(client, as_admin, path, encoded())
    body = client.get(f"{API}/products/{product.id}").json
    assert len(body["images"]) == 2 and body["variants"][0]["images"] == [made.json]
    variants = client.get(f"{API}/products/{product.id}/variants").json["items"]
    assert variants[0]["images"] == [made.json]

    wrong = upload(client, as_admin, path, encoded(), variant_id=other_variant.id)
    assert wrong.status_code == 422 and set(wrong.json["errors"]) == {"variant_id"}
    assert wrong.json["detail"] == f"Product {product.id} has no variant {other_variant.id}."
    one = f"{API}/{path}/{made.json['id']}"
    patched = client.patch(one, headers=as_admin, json={"variant_id": other_variant.id})
    assert patched.status_code == 422
    assert client.patch(one, headers=as_admin, json={"variant_id": None}).json["variant_id"] is None
    client.patch(one, headers=as_admin, json={"variant_id": variant.id})
    # A variant deleted: its images stay the product's.
    client.delete(f"{API}/products/{product.id}/variants/{variant.id}", headers=as_admin)
    kept = client.get(f"{API}/{path}").json["items"]
    assert len(kept) == 2 and all(item["variant_id"] is None for item in kept)


def test_a_deleted_image_and_a_deleted_products_files_are_removed(client, app, as_admin):
    product = make_product(app)
    path = images_path(product)
    first = upload(client, as_admin, path, encoded()).json
    second = upload(client, as_admin, path, encoded("WEBP"), "b.webp").json
    assert fetch(client, second["url"]).mimetype == "image/webp"
    urls = [first[k] for k in ("url", "thumbnail_url", "thumbnail_webp_url")]
    assert client.delete(f"{API}/{path}/{first['id']}", headers=as_admin).status_code == 204
    assert [fetch(client, url).status_code for url in urls] == [404, 404, 404]
    assert fetch(client, second["url"]).status_code == 200
    with app.app_context():
        entry = db.session.scalar(
            select(AuditLog).where(AuditLog.action == "product_image.deleted")
        )
    assert entry.target_id == first["id"]

    assert client.delete(f"{API}/products/{product.id}", headers=as_admin).status_code == 204
    assert fetch(client, second["url"]).status_code == 404
    with app.app_context():
        assert db.session.scalars(select(ProductImage)).all() == []


def test_a_refused_write_leaves_no_file_behind(client, app, as_admin, monkeypatch):
    monkeypatch.setattr("shop.products.images.MAX_IMAGES", 1)
    root = Path(app.config["MEDIA_ROOT"])
    product = make_product(app)
    assert upload(client, as_admin, images_path(product), encoded()).status_code == 201
    before = files_under(root)
    refused = upload(client, as_admin, images_path(product), encoded())
    assert refused.status_code == 409
    assert files_under(root) == before


def test_a_storage_that_refuses_files_is_a_503_with_nothing_recorded(
    other_app, app, tmp_path, as_admin
):
    not_a_folder = tmp_path / "media"
    not_a_folder.write_text("a file where the folder should be")
    client = other_app(MEDIA_ROOT=str(not_a_folder)).test_client()
    product = make_product(app)
    response = upload(client, as_admin, images_path(product), encoded())
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"]
    assert client.get(f"{API}/{images_path(product)}").json["total"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "../../etc/passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        "products/..%2f..%2f..%2fetc/passwd",
        "..%5c..%5cwindows",
        "/etc/passwd",
        "products/1/nothing.png",
        "products",
    ],
)
def test_media_paths_outside_the_files_are_404(client, app, path):
    response = client.get(f"{API}/media/{path}", follow_redirects=True)
    assert response.status_code == 404


def test_a_cached_product_shows_a_new_image_at_once(client, app, as_admin):
    product = make_product(app)
    url = f"{API}/products/{product.id}"
    assert client.get(url).json["images"] == []
    assert client.get(f"{API}/{images_path(product)}").json["total"] == 0
    made = upload(client, as_admin, images_path(product), encoded(), alt="new").json
    assert client.get(url).json["images"] == [made]
    assert client.get(f"{API}/{images_path(product)}").json["items"] == [made]
    client.patch(f"{API}/{images_path(product)}/{made['id']}", headers=as_admin, json={"alt": "x"})
    assert client.get(url).json["images"][0]["alt"] == "x"
    client.delete(f"{API}/{images_path(product)}/{made['id']}", headers=as_admin)
    assert client.get(url).json["images"] == []


def test_a_list_reads_every_products_images_in_one_query(client, app, as_admin, count_queries):
    for i in range(6):
        product = make_product(app, name=f"P{i}")
        for _ in range(2):
            upload(client, as_admin, images_path(product), encoded("PNG", (40, 40)))
    client.get(f"{API}/products?page_size=1")  # the total is cached apart from the page
    counts = []
    for size in (2, 6):
        with count_queries() as counter:
            page = client.get(f"{API}/products?page_size={size}").json
        assert len(page["items"]) == size and all(len(p["images"]) == 2 for p in page["items"])
        counts.append(counter.count)
    assert counts[0] == counts[1] == 3  # page (with categories), variants, images
