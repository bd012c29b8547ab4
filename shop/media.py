"""Stored files (the catalog's images) behind one small interface, `Storage`, with two backends
chosen by MEDIA_STORAGE: `local` (files under MEDIA_ROOT, served by GET /api/v1/media/<key>)
and `s3` (a bucket). A file's url is MEDIA_URL and its key. Writers make every key unique, so a
file never changes: it is cached for a year. A storage that fails a write is a 503."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask, Response, current_app, send_from_directory
from flask.views import MethodView

from shop.api import Blueprint
from shop.db import after_commit, after_rollback
from shop.errors import NotFound, Unavailable

log = logging.getLogger(__name__)
IMMUTABLE = "public, max-age=31536000, immutable"
# What a key may be: lowercase words, digits and dashes, in folders, with an extension.
KEY = re.compile(r"[a-z0-9]+(?:[-/][a-z0-9]+)*\.[a-z0-9]+")


@dataclass(frozen=True)
class File:
    key: str
    data: bytes
    content_type: str


class Storage(Protocol):
    def save(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key`; Unavailable when the storage does not take it."""

    def delete(self, key: str) -> None:
        """Remove the file (none there is no error)."""


class LocalStorage:
    """Files under `root`, written whole (a reader never sees half a file)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, key: str, data: bytes, content_type: str) -> None:
        path = self.root / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as partial:
                partial.write(data)
            os.replace(partial.name, path)
        except OSError as error:
            raise Unavailable(f"The media storage refused the file: {error.strerror}.") from None

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)


class S3Storage:
    """Objects in an S3 bucket (AWS, or any S3-protocol server at S3_ENDPOINT_URL)."""

    def __init__(self, bucket: str, client: Any) -> None:
        self.bucket = bucket
        self.client = client

    def save(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                CacheControl=IMMUTABLE,
            )
        except (BotoCoreError, ClientError) as error:
            log.warning("media storage refused %s: %s", key, error)
            raise Unavailable("The media storage is unavailable; retry shortly.") from None

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


def _s3_client(config: dict[str, Any]) -> Any:
    endpoint = config["S3_ENDPOINT_URL"]
    timeout = config["S3_TIMEOUT"]
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=config["S3_REGION"],
        config=Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 2, "mode": "standard"},
            # An endpoint of its own (MinIO, a test server) is addressed by path.
            s3={"addressing_style": "path" if endpoint else "auto"},
        ),
    )


def default_url(config: dict[str, Any]) -> str:
    """MEDIA_URL when unset: shop's own /api/v1/media (local); the bucket at S3_ENDPOINT_URL
    (by path), else on AWS (virtual-hosted)."""
    if config["MEDIA_STORAGE"] == "local":
        return f"{config['PUBLIC_URL'].rstrip('/')}/api/v1/media"
    if config["S3_ENDPOINT_URL"]:
        return f"{config['S3_ENDPOINT_URL'].rstrip('/')}/{config['S3_BUCKET']}"
    return f"https://{config['S3_BUCKET']}.s3.{config['S3_REGION']}.amazonaws.com"


def init_app(app: Flask) -> None:
    config = app.config
    backend: Storage
    if config["MEDIA_STORAGE"] == "s3":
        backend = S3Storage(config["S3_BUCKET"], _s3_client(config))
    else:
        backend = LocalStorage(Path(config["MEDIA_ROOT"]))
    app.extensions["media"] = (backend, (config["MEDIA_URL"] or default_url(config)).rstrip("/"))


def storage() -> Storage:
    backend: Storage = current_app.extensions["media"][0]
    return backend


def url(key: str) -> str:
    return f"{current_app.extensions['media'][1]}/{key}"


def delete(keys: Iterable[str]) -> None:
    """Remove files, logging (not raising) a failure: a file nothing refers to is only waste."""
    backend = storage()
    for key in keys:
        try:
            backend.delete(key)
        except Exception:
            log.warning("could not delete the media file %s", key, exc_info=True)


def delete_after_commit(keys: Iterable[str]) -> None:
    """Remove files once the current unit of work has committed (never if it rolls back)."""
    doomed = list(keys)
    if doomed:
        after_commit(lambda: delete(doomed))


def save(files: list[File]) -> None:
    """Store `files` for the current unit of work, which records them: if it rolls back (a
    file the storage refused among them), what was saved is removed again."""
    saved: list[str] = []
    after_rollback(lambda: delete(saved))
    for file in files:
        storage().save(file.key, file.data, file.content_type)
        saved.append(file.key)


blp = Blueprint("media", __name__, url_prefix="/api/v1/media", description="Stored files")


@blp.route("/<path:key>")
class MediaFile(MethodView):
    @blp.errors(404)
    @blp.response(
        200,
        {"type": "string", "format": "binary"},
        content_type="image/jpeg",
        description="The file (also image/png, image/webp), cached for a year: it never changes",
    )
    @blp.doc(
        responses={
            200: {
                "content": {
                    kind: {"schema": {"type": "string", "format": "binary"}}
                    for kind in ("image/png", "image/webp")
                }
            }
        }
    )
    def get(self, key: str) -> Response:
        """A stored file (MEDIA_STORAGE=local; with s3, urls point at the bucket)

        Anyone (no token): product images, by the key their `url` names. A key is written
        once and never changes, so the answer is cached for a year (immutable). An unknown
        key, a malformed one, or any key while MEDIA_STORAGE=s3 is a 404."""
        backend = storage()
        if not isinstance(backend, LocalStorage) or not KEY.fullmatch(key):
            raise NotFound("No such file.")
        response = send_from_directory(backend.root, key, max_age=31_536_000)
        response.headers["Cache-Control"] = IMMUTABLE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
