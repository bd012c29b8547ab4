"""MEDIA_STORAGE=s3 against a real S3-protocol server (moto's, on a port of its own): files
land in the bucket and are read back from it; a storage that does not answer is a 503 in
seconds."""

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from tests.factories import make_product
from tests.products.images import API, encoded, jpeg_with_gps, opened, upload

BUCKET = "shop-media"
PUBLIC_READ = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
        }
    ],
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def bucket(s3_endpoint: str, aws_env: None) -> Iterator[Any]:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    # What an operator does (README): anyone may read the files, as from a CDN.
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(PUBLIC_READ))
    yield s3
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)


def s3_app(other_app: Any, endpoint: str) -> Any:
    return other_app(
        MEDIA_STORAGE="s3",
        S3_BUCKET=BUCKET,
        S3_ENDPOINT_URL=endpoint,
        S3_REGION="us-east-1",
        MEDIA_URL=None,
        S3_TIMEOUT=1.0,
    )


def key_of(url: str, endpoint: str) -> str:
    prefix = f"{endpoint}/{BUCKET}/"
    assert url.startswith(prefix), url
    return url[len(prefix) :]


def test_images_go_to_the_bucket_and_are_read_from_it(
    app, other_app, s3_endpoint, bucket, as_admin
):
    client = s3_app(other_app, s3_endpoint).test_client()
    product = make_product(app)
    made = upload(client, as_admin, f"products/{product.id}/images", jpeg_with_gps(), "cam.jpg")
    assert made.status_code == 201, made.json
    keys = [
        key_of(made.json[k], s3_endpoint) for k in ("url", "thumbnail_url", "thumbnail_webp_url")
    ]
    stored = bucket.get_object(Bucket=BUCKET, Key=keys[0])
    assert stored["ContentType"] == "image/jpeg"
    assert stored["CacheControl"] == "public, max-age=31536000, immutable"
    image = opened(stored["Body"].read())
    assert image.size == (800, 1200) and dict(image.getexif()) == {}
    # The url itself answers (as a browser would read it).
    webp = httpx.get(made.json["thumbnail_webp_url"])
    assert webp.status_code == 200 and opened(webp.content).format == "WEBP"
    # GET /media serves only local files.
    assert client.get(f"{API}/media/{keys[0]}").status_code == 404

    one = f"{API}/products/{product.id}/images/{made.json['id']}"
    assert client.delete(one, headers=as_admin).status_code == 204
    for key in keys:
        with pytest.raises(ClientError):
            bucket.head_object(Bucket=BUCKET, Key=key)


def test_a_storage_that_does_not_answer_is_a_503_in_seconds(app, other_app, aws_env, as_admin):
    client = s3_app(other_app, "http://127.0.0.1:1").test_client()
    product = make_product(app)
    started = time.monotonic()
    response = upload(client, as_admin, f"products/{product.id}/images", encoded())
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] and time.monotonic() - started < 5
    assert client.get(f"{API}/products/{product.id}/images").json["total"] == 0
