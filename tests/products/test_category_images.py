"""A category's image: the product images' upload rules, one image replacing the other."""

from sqlalchemy import select

from shop.audit.models import AuditLog
from shop.db import db
from tests.factories import make_category
from tests.products.images import API, encoded, fetch, jpeg_with_gps, opened, png_header, upload


def test_a_category_takes_an_image_and_a_new_one_replaces_it(client, app, as_admin):
    category = make_category(app, "Lamps")
    url = f"{API}/categories/{category.id}"
    assert client.get(url).json["image_url"] is None and client.get(url).json["image"] is None
    made = upload(client, as_admin, f"categories/{category.id}/image", jpeg_with_gps(), "a.jpg")
    assert made.status_code == 201, made.json
    assert made.headers["Location"].endswith(f"/categories/{category.id}")
    first = made.json["image"]
    assert made.json["image_url"] == first["url"] and (first["width"], first["height"]) == (
        800,
        1200,
    )
    stored = opened(fetch(client, first["url"]).data)
    assert dict(stored.getexif()) == {}
    assert opened(fetch(client, first["thumbnail_url"]).data).size == (267, 400)
    assert client.get(url).json["image_url"] == first["url"]
    assert client.get(f"{API}/categories").json["items"][0]["image_url"] == first["url"]

    again = upload(client, as_admin, f"categories/{category.id}/image", encoded("WEBP"), "b.webp")
    assert again.status_code == 201 and again.json["image_url"] != first["url"]
    assert fetch(client, first["url"]).status_code == 404  # the replaced files are gone
    assert fetch(client, again.json["image_url"]).mimetype == "image/webp"
    assert client.get(url).json["image_url"] == again.json["image_url"]

    assert client.delete(f"{url}/image", headers=as_admin).status_code == 204
    assert client.get(url).json["image_url"] is None
    assert fetch(client, again.json["image_url"]).status_code == 404
    assert client.delete(f"{url}/image", headers=as_admin).status_code == 204  # none: no-op
    with app.app_context():
        actions = db.session.scalars(
            select(AuditLog.action).where(AuditLog.action.like("category.image%"))
        ).all()
    assert sorted(actions) == ["category.image_removed", "category.image_set", "category.image_set"]


def test_category_images_need_admin_and_follow_the_upload_rules(
    client, app, as_admin, as_customer, as_staff
):
    category = make_category(app, "Lamps")
    path = f"categories/{category.id}/image"
    for headers, status in ((None, 401), (as_customer, 403), (as_staff, 403)):
        assert upload(client, headers, path, encoded()).status_code == status
        kwargs = {"headers": headers} if headers else {}
        assert client.delete(f"{API}/{path}", **kwargs).status_code == status
    assert upload(client, as_admin, "categories/999999/image", encoded()).status_code == 404
    assert client.delete(f"{API}/categories/999999/image", headers=as_admin).status_code == 404
    for data in (b"%PDF-1.4 not an image", png_header(20_000, 20_000), None):
        assert upload(client, as_admin, path, data).status_code == 422
    assert upload(client, as_admin, path, encoded(), alt="no alt here").status_code == 422
    assert client.get(f"{API}/categories/{category.id}").json["image_url"] is None


def test_deleting_a_category_removes_its_image(client, app, as_admin):
    category = make_category(app, "Lamps")
    image_url = upload(client, as_admin, f"categories/{category.id}/image", encoded()).json[
        "image_url"
    ]
    assert client.delete(f"{API}/categories/{category.id}", headers=as_admin).status_code == 204
    assert fetch(client, image_url).status_code == 404
