"""Images uploaded by clients, made safe to serve: decoded only as JPEG, PNG or WebP, their
pixels counted from the header before anything is decoded (a small file can expand to
gigabytes), re-encoded from the pixels alone (EXIF, GPS, XMP, comments and profiles dropped,
after the EXIF orientation is applied and colours are turned to sRGB), with a thumbnail of at
most THUMBNAIL_SIZE px a side in the same format and in WebP."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageCms, ImageOps

from shop.errors import Unprocessable

THUMBNAIL_SIZE = 400
# Pillow's format name -> the file extension and the content type it is stored with.
FORMATS = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
}
_SAVE_OPTIONS = {"JPEG": {"quality": 88, "optimize": True}, "PNG": {}, "WEBP": {"quality": 85}}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
NOT_AN_IMAGE = "The file is not a JPEG, PNG or WebP image that decodes."


@dataclass(frozen=True)
class Encoded:
    data: bytes
    extension: str
    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class Processed:
    image: Encoded
    thumbnail: Encoded
    thumbnail_webp: Encoded


def _refuse(message: str) -> Unprocessable:
    return Unprocessable(message, errors={"file": [message]})


def _decode(stream: IO[bytes], max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream, formats=list(FORMATS))  # reads the header only
            if image.width * image.height > max_pixels:
                raise _refuse(f"The image has more than {max_pixels:,} pixels.")
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(f"The image has more than {max_pixels:,} pixels.") from None
    except Unprocessable:
        raise
    except Exception:  # whatever a decoder raises on a malformed file, it is the file's fault
        raise _refuse(NOT_AN_IMAGE) from None
    return image


def _in_srgb(image: Image.Image) -> Image.Image:
    """The pixels, upright, in RGB(A) or L, colour-managed to sRGB when the file says how."""
    upright = ImageOps.exif_transpose(image)
    alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    mode = "RGBA" if alpha else ("L" if upright.mode in ("1", "L") else "RGB")
    profile = upright.info.get("icc_profile")
    converted: Image.Image | None = None
    if profile and upright.mode in ("RGB", "RGBA", "CMYK", "L"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            converted = ImageCms.profileToProfile(upright, source, _SRGB, outputMode=mode)
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None  # a profile that cannot be read is dropped like the rest
    clean = converted or upright.convert(mode)
    clean.info = {}  # nothing of the upload's metadata may reach the saved file
    return clean


def _encode(image: Image.Image, kind: str) -> Encoded:
    extension, content_type = FORMATS[kind]
    if kind == "JPEG" and image.mode == "RGBA":
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format=kind, **_SAVE_OPTIONS[kind])
    return Encoded(out.getvalue(), extension, content_type, image.width, image.height)


def process(stream: IO[bytes], *, max_pixels: int) -> Processed:
    """The re-encoded image and its thumbnails; a 422 for anything that is not a JPEG, PNG or
    WebP of at most `max_pixels` pixels that decodes whole (a truncated file does not)."""
    decoded = _decode(stream, max_pixels)
    kind = decoded.format or "PNG"
    image = _in_srgb(decoded)
    thumbnail = image.copy()
    thumbnail.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS, reducing_gap=3)
    return Processed(_encode(image, kind), _encode(thumbnail, kind), _encode(thumbnail, "WEBP"))
