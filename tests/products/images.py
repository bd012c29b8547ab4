"""Image files for the image tests, made with Pillow (or by hand, where a file must lie)."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any
from urllib.parse import urlsplit

from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

API = "/api/v1"


def encoded(kind: str = "PNG", size: tuple[int, int] = (800, 600), **options: Any) -> bytes:
    out = io.BytesIO()
    mode = "RGBA" if kind == "PNG" else "RGB"
    Image.new(mode, size, (200, 30, 30, 255)[: len(mode)]).save(out, kind, **options)
    return out.getvalue()


def jpeg_with_gps(size: tuple[int, int] = (1200, 800)) -> bytes:
    """A camera's JPEG: its EXIF names the maker, where it was taken, and says "rotate 90°"."""
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 22.0, 30.0), 3: "E", 4: (4.0, 53.0, 0.0)})
    return encoded("JPEG", size, exif=exif.tobytes())


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` pixels in its header (and holds none)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def upload(
    client: Any, headers: Any, path: str, data: bytes | None, name: str = "a.png", **fields: Any
) -> Any:
    """POST a multipart body: `data` as its file (None: no file), and `fields`. (Encoded here
    in memory: the test client spools a large body to a file it never closes.)"""
    body: dict[str, Any] = {key: str(value) for key, value in fields.items()}
    if data is not None:
        body["file"] = FileStorage(io.BytesIO(data), filename=name)
    boundary, encoded_body = encode_multipart(body)
    return client.post(
        f"{API}/{path}",
        headers=headers or {},
        data=encoded_body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def fetch(client: Any, url: str) -> Any:
    """GET a media url through the app (its path; the host is PUBLIC_URL's), read whole."""
    response = client.get(urlsplit(url).path)
    response.get_data()
    response.close()  # a file's answer holds it open until closed
    return response


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
