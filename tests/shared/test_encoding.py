"""shared.encoding: base64 and image payloads, and every way they are refused."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from shared import encoding
from shared.encoding import (
    IMAGE_MIME,
    decode_bytes,
    decode_image,
    decoded_size,
    encode_bytes,
    sniff_image_format,
    split_data_uri,
)
from shared.errors import BadInput, InputTooLarge

MB = 1 << 20


def image_bytes(fmt: str, size=(16, 12), color=(200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt.upper())
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("data", [b"", b"a", b"ab", b"abc", b"abcd", bytes(range(256))])
def test_bytes_round_trip_with_and_without_data_uri(data):
    if data:
        assert decode_bytes(encode_bytes(data), field="f", max_bytes=MB) == data
        assert decode_bytes(encode_bytes(data, "application/octet-stream"), field="f", max_bytes=MB) == data


@pytest.mark.parametrize("n", range(0, 10))
def test_decoded_size_is_exact_before_decoding(n):
    text = b64(b"x" * n)
    assert decoded_size(text) == n


def test_data_uri_prefix_is_split_from_the_body():
    assert split_data_uri("data:image/png;base64,QUJD") == ("image/png", "QUJD")
    assert split_data_uri("QUJD") == (None, "QUJD")


def test_line_wrapped_base64_is_accepted():
    text = b64(b"hello world, this is wrapped")
    wrapped = "\n".join(text[i:i + 8] for i in range(0, len(text), 8))
    assert decode_bytes(wrapped, field="f", max_bytes=MB) == b"hello world, this is wrapped"


@pytest.mark.parametrize("text", ["not base64!", "QUJ", "QU=D", "QUJD====", "@@@@"])
def test_bad_base64_is_bad_input_naming_the_field(text):
    with pytest.raises(BadInput) as info:
        decode_bytes(text, field="image", max_bytes=MB)
    assert info.value.problems[0].field == "image"


def test_empty_payload_is_bad_input():
    with pytest.raises(BadInput, match="empty"):
        decode_bytes("data:image/png;base64,", field="image", max_bytes=MB)


def test_non_string_payload_is_bad_input():
    with pytest.raises(BadInput):
        decode_bytes(123, field="image", max_bytes=MB)  # type: ignore[arg-type]


def test_oversize_payload_is_refused_before_decoding(monkeypatch):
    import shared.encoding as encoding

    monkeypatch.setattr(encoding.base64, "b64decode", lambda *a, **k: pytest.fail("decoded an oversize payload"))
    with pytest.raises(InputTooLarge) as info:
        decode_bytes(b64(b"x" * 101), field="image", max_bytes=100)
    assert info.value.code == "INPUT_TOO_LARGE"
    assert "101" in info.value.message and "100" in info.value.message


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_each_image_format_is_sniffed(fmt):
    assert sniff_image_format(image_bytes(fmt)) == fmt


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("data_uri", [False, True])
def test_image_round_trip_keeps_size_and_format(fmt, data_uri):
    image = Image.new("RGB", (24, 16), (0, 128, 255))
    text = encode_bytes(encoding.image_bytes(image, fmt, quality=80), IMAGE_MIME[fmt] if data_uri else None)
    if data_uri:
        assert text.startswith(f"data:image/{fmt};base64,")
    raw = decode_bytes(text, field="f", max_bytes=MB)
    assert sniff_image_format(raw) == fmt
    decoded = decode_image(text, field="f", max_bytes=MB, max_pixels=10_000)
    assert decoded.size == (24, 16) and decoded.mode == "RGB"


def test_unknown_output_format_is_a_programming_error():
    with pytest.raises(ValueError):
        encoding.image_bytes(Image.new("RGB", (2, 2)), "gif")


def test_wrong_image_type_is_bad_input():
    with pytest.raises(BadInput, match="PNG, JPEG or WebP"):
        decode_image(b64(image_bytes("gif")), field="init_image", max_bytes=MB, max_pixels=10_000)


def test_truncated_image_is_bad_input():
    data = image_bytes("png", size=(64, 64))[:60]
    with pytest.raises(BadInput, match="damaged"):
        decode_image(b64(data), field="init_image", max_bytes=MB, max_pixels=100_000)


def test_too_many_pixels_is_refused_from_the_header():
    with pytest.raises(InputTooLarge) as info:
        decode_image(b64(image_bytes("png", size=(100, 100))), field="init_image", max_bytes=MB, max_pixels=9_999)
    assert "pixels" in info.value.message


def test_rgba_and_grayscale_inputs_are_converted_to_rgb():
    buffer = io.BytesIO()
    Image.new("LA", (8, 8)).save(buffer, format="PNG")
    assert decode_image(b64(buffer.getvalue()), field="f", max_bytes=MB, max_pixels=100).mode == "RGB"


def test_an_absurd_header_is_refused_as_too_large_without_a_made_up_size():
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    # A PNG header claiming 30000 x 30000 pixels: PIL's own bomb guard fires before ours can read the size.
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
    data = b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    with pytest.raises(InputTooLarge) as info:
        decode_image(b64(data), field="init_image", max_bytes=MB, max_pixels=1_000_000)
    assert info.value.message == "init_image: is over the limit of 1000000 pixels"
