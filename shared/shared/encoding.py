"""Base64 payloads: bytes and images (PNG, JPEG, WebP), with or without a data-URI prefix.

Decoding is strict and bounded: the decoded size is computed from the text length *before* any
decoding, image headers are sniffed before pixels are decoded, and every refusal is a typed
BadInput or InputTooLarge naming the field.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import TYPE_CHECKING

from shared.errors import BadInput, InputTooLarge

if TYPE_CHECKING:  # PIL is imported only by the workers that handle images
    from PIL.Image import Image

#: Output formats and their MIME types; also the only input formats accepted.
IMAGE_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[\w.-]+)*;base64,", re.ASCII)
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/]*={0,2}$", re.ASCII)


def encode_bytes(data: bytes, mime: str | None = None) -> str:
    """Standard base64 text; a data URI (``data:<mime>;base64,...``) when ``mime`` is given."""
    text = base64.b64encode(data).decode("ascii")
    return f"data:{mime};base64,{text}" if mime else text


def decoded_size(text: str) -> int:
    """Exact number of bytes ``text`` (bare base64, no prefix) decodes to, without decoding it."""
    return len(text) // 4 * 3 - text[-2:].count("=") if text else 0


def split_data_uri(text: str) -> tuple[str | None, str]:
    """(mime or None, bare base64) from either a data URI or bare base64."""
    match = _DATA_URI.match(text)
    if not match:
        return None, text
    return match.group("mime"), text[match.end():]


def decode_bytes(text: str, *, field: str, max_bytes: int) -> bytes:
    """Strictly decode base64 (bare or data URI) into at most ``max_bytes`` bytes."""
    if not isinstance(text, str):
        raise BadInput.field(field, "must be a base64 string")
    _, body = split_data_uri(text.strip())
    body = "".join(body.split())  # line-wrapped base64 (MIME style) is common and harmless
    if not body:
        raise BadInput.field(field, "is empty")
    size = decoded_size(body)
    if size > max_bytes:
        raise InputTooLarge(field, size, max_bytes)
    if len(body) % 4 or not _BASE64_CHARS.match(body):
        raise BadInput.field(field, "is not valid base64 (only A-Z a-z 0-9 + / and = padding, length a multiple of 4)")
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise BadInput.field(field, f"is not valid base64: {exc}") from None


def sniff_image_format(data: bytes) -> str | None:
    """'png', 'jpeg' or 'webp' from the file signature, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def decode_image(text: str, *, field: str, max_bytes: int, max_pixels: int) -> Image:
    """Decode a base64 PNG/JPEG/WebP into an RGB PIL image, checking bytes, type and pixel count
    before the pixels are decoded (no decompression bombs)."""
    from PIL import Image, UnidentifiedImageError

    data = decode_bytes(text, field=field, max_bytes=max_bytes)
    kind = sniff_image_format(data)
    if kind is None:
        raise BadInput.field(field, f"is not a PNG, JPEG or WebP image (accepted: {', '.join(IMAGE_MIME)})")
    try:
        image = Image.open(io.BytesIO(data), formats=[kind.upper()])
        width, height = image.size  # read from the header; no pixel decoded yet
        if width * height > max_pixels:
            raise InputTooLarge(field, width * height, max_pixels, unit="pixels")
        image.load()
    except Image.DecompressionBombError:  # PIL's own guard fires in open() for absurd headers
        raise InputTooLarge(field, None, max_pixels, unit="pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadInput.field(field, f"is a damaged {kind.upper()} image: {exc}") from None
    return image.convert("RGB")


def image_bytes(image: Image, fmt: str = "png", *, quality: int = 90) -> bytes:
    """A PIL image as PNG, JPEG or WebP file bytes (quality applies to the lossy two)."""
    if fmt not in IMAGE_MIME:
        raise ValueError(f"unknown image format {fmt!r}; expected one of {sorted(IMAGE_MIME)}")
    buffer = io.BytesIO()
    options = {"optimize": False, "compress_level": 1} if fmt == "png" else {"quality": quality}
    image.save(buffer, format=fmt.upper(), **options)
    return buffer.getvalue()

