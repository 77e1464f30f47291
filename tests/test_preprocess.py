"""Tests for model.preprocess; every input image is built in memory with Pillow."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from model import preprocess
from model.preprocess import (
    MAX_PIXELS,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    Square,
    TruncatedImageError,
    centre_square,
    crop_and_resize,
    load_image,
    load_rgb,
    normalize,
    square_pixels,
    whole_square,
)

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def mean_colour(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(pixels, dtype=np.float64).reshape(-1, 3).mean(axis=0)


def assert_colour(pixels: np.ndarray, expected: tuple[int, int, int], tol: float = 12.0) -> None:
    actual = mean_colour(pixels)
    assert np.all(np.abs(actual - np.array(expected)) <= tol), (actual, expected)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny 1-bit PNG whose IHDR claims width x height (valid CRC, no real pixel data)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + body + end


def noisy_jpeg(width: int = 256, height: int = 256) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "JPEG", quality=90)


# --- formats -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "colour", "tol"),
    [
        ("JPEG", RED, 12.0),
        ("PNG", GREEN, 0.0),
        ("WEBP", BLUE, 12.0),
        ("BMP", RED, 0.0),
        ("TIFF", GREEN, 0.0),
        ("GIF", BLUE, 0.0),
        ("HEIF", RED, 12.0),  # iPhones' HEIC
        ("AVIF", GREEN, 12.0),
    ],
)
def test_formats_decode_to_model_input(fmt: str, colour: tuple[int, int, int], tol: float) -> None:
    photo = encode(Image.new("RGB", (320, 240), colour), fmt)
    pixels = load_image(photo, 224)
    assert pixels.shape == (224, 224, 3)
    assert pixels.dtype == np.uint8
    assert_colour(pixels, colour, tol)


@pytest.mark.reliability
@pytest.mark.parametrize(("fmt", "tol"), [("GIF", 0.0), ("WEBP", 12.0)])
def test_animations_use_their_first_frame(fmt: str, tol: float) -> None:
    frames = [Image.new("RGB", (64, 64), c) for c in (RED, GREEN, BLUE)]
    photo = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(photo)).n_frames == 3
    assert_colour(load_image(photo, 32), RED, tol)


# --- orientation -------------------------------------------------------------------------


def red_left_blue_right(width: int = 200, height: int = 100) -> Image.Image:
    image = Image.new("RGB", (width, height), RED)
    image.paste(BLUE, (width // 2, 0, width, height))
    return image


@pytest.mark.parametrize(
    ("orientation", "top_colour", "bottom_colour"),
    [
        (6, RED, BLUE),  # rotate 90 clockwise: the left edge becomes the top
        (8, BLUE, RED),  # rotate 90 counter-clockwise: the right edge becomes the top
    ],
)
def test_exif_orientation_is_applied(
    orientation: int, top_colour: tuple[int, int, int], bottom_colour: tuple[int, int, int]
) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo = encode(red_left_blue_right(), "JPEG", exif=exif, quality=95)
    image = load_rgb(photo)
    assert image.size == (100, 200)
    pixels = np.asarray(image)
    assert_colour(pixels[:80], top_colour)
    assert_colour(pixels[-80:], bottom_colour)


# EXIF orientation n is undone by this transpose (the EXIF specification's table).
UNDO_ORIENTATION = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                    8: Image.Transpose.ROTATE_90}


@pytest.mark.reliability
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_undone(orientation: int) -> None:
    quadrants = Image.new("RGB", (200, 100), RED)  # red, green / blue, white
    quadrants.paste(GREEN, (100, 0, 200, 50))
    quadrants.paste(BLUE, (0, 50, 100, 100))
    quadrants.paste(WHITE, (100, 50, 200, 100))
    exif = Image.Exif()
    exif[0x0112] = orientation
    transpose = UNDO_ORIENTATION[orientation]
    upright = quadrants if transpose is None else quadrants.transpose(transpose)
    got = np.asarray(load_rgb(encode(quadrants, "PNG", exif=exif)))
    assert got.shape == np.asarray(upright).shape
    assert np.array_equal(got, np.asarray(upright))


def test_draft_decoding_is_a_smaller_full_decode_upright() -> None:
    # A phone photo: 1600×1200, stored sideways with EXIF orientation 6. JPEG's reduced DCT
    # scales (here 1/8) must give the same upright photo as a full decode, only smaller.
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = encode(red_left_blue_right(1600, 1200), "JPEG", exif=exif, quality=90)
    full, draft = load_rgb(photo), load_rgb(photo, min_side=100)
    assert full.size == (1200, 1600)
    assert draft.size == (150, 200)  # the smallest scale that keeps both sides >= 100
    for image in (full, draft):
        pixels = np.asarray(image)
        assert_colour(pixels[: image.height * 2 // 5], RED)  # the left edge is now the top
        assert_colour(pixels[-image.height * 2 // 5 :], BLUE)
    np.testing.assert_allclose(load_image(photo, 64), crop_and_resize(full, 64), atol=4)


def test_heic_follows_its_own_transforms_not_the_exif_tag() -> None:
    # The HEIF spec: the container's rotation (applied by libheif) rules and the EXIF tag is
    # informative, so an iPhone photo, which carries both, must not be rotated twice.
    exif = Image.Exif()
    exif[0x0112] = 6
    image = load_rgb(encode(red_left_blue_right(), "HEIF", exif=exif, quality=95))
    assert image.size == (200, 100)
    assert_colour(np.asarray(image)[:, :90], RED, 12.0)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_broken_exif_does_not_lose_the_photo() -> None:
    photo = encode(red_left_blue_right(), "JPEG", exif=b"Exif\x00\x00MM\x00*garbage-garbage")
    image = load_rgb(photo)
    assert image.size == (200, 100)
    assert image.mode == "RGB"


def test_exif_failure_falls_back_to_unrotated(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(image: Image.Image) -> Image.Image:
        raise SyntaxError("bad EXIF")

    monkeypatch.setattr(preprocess.ImageOps, "exif_transpose", explode)
    image = load_rgb(encode(red_left_blue_right(), "PNG"))
    assert image.size == (200, 100)
    assert_colour(np.asarray(image)[:, :90], RED, 0.0)


# --- colour modes ------------------------------------------------------------------------


def test_transparent_rgba_becomes_white() -> None:
    image = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 20, 40))
    pixels = np.asarray(load_rgb(encode(image, "PNG")))
    assert_colour(pixels[:, :20], RED, 0.0)
    assert_colour(pixels[:, 20:], WHITE, 0.0)


def test_transparent_la_becomes_white() -> None:
    image = Image.new("LA", (40, 40), (0, 0))
    pixels = np.asarray(load_rgb(encode(image, "PNG")))
    assert_colour(pixels, WHITE, 0.0)


def test_palette_with_transparency_becomes_white() -> None:
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    image.paste(1, (0, 0, 20, 40))
    photo = encode(image, "PNG", transparency=0)
    pixels = np.asarray(load_rgb(photo))
    assert_colour(pixels[:, :20], RED, 0.0)
    assert_colour(pixels[:, 20:], WHITE, 0.0)


@pytest.mark.parametrize("mode", ["L", "1", "YCbCr"])
def test_simple_modes_become_rgb(mode: str) -> None:
    image = Image.new("RGB", (30, 30), WHITE).convert(mode)
    result = load_rgb(encode(image, "TIFF" if mode == "YCbCr" else "PNG"))
    assert result.mode == "RGB"
    assert_colour(np.asarray(result), WHITE, 2.0)


@pytest.mark.reliability
def test_cmyk_jpeg_is_roughly_right_colour() -> None:
    cmyk = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # pure red in CMYK
    assert_colour(load_image(encode(cmyk, "JPEG", quality=95), 32), RED, 20.0)


@pytest.mark.reliability
@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_greyscale_is_scaled_not_clipped(fmt: str) -> None:
    gradient = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (16, 1))
    image = Image.fromarray(gradient)
    assert image.mode.startswith("I;16")
    pixels = np.asarray(load_rgb(encode(image, fmt)))
    assert pixels[0, 0].tolist() == [0, 0, 0]
    assert pixels[0, -1].tolist() == [255, 255, 255]
    assert 120 <= pixels[0, 128, 0] <= 135


def test_wide_integer_mode_is_scaled_by_its_peak() -> None:
    image = Image.fromarray(np.array([[0, 500, 1000]], dtype=np.int32)).convert("I")
    pixels = np.asarray(preprocess._to_rgb(image))
    assert pixels[0, :, 0].tolist() == [0, 128, 255]


# --- sizes and cropping ------------------------------------------------------------------


def test_large_jpeg_is_drafted_at_reduced_scale() -> None:
    photo = encode(Image.new("RGB", (4000, 3000), GREEN), "JPEG", quality=80)
    image = load_rgb(photo, min_side=224)
    assert min(image.size) >= 224
    assert max(image.size) <= 1000
    assert load_image(photo, 224).shape == (224, 224, 3)


def test_crop_keeps_the_centre_of_a_wide_image() -> None:
    image = Image.new("RGB", (300, 100), RED)
    image.paste(GREEN, (100, 0, 200, 100))
    pixels = crop_and_resize(image, 64)
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
    assert_colour(pixels[:, 4:-4], GREEN, 1.0)


def test_crop_keeps_the_centre_of_a_tall_image() -> None:
    image = Image.new("RGB", (100, 300), BLUE)
    image.paste(GREEN, (0, 100, 100, 200))
    assert_colour(crop_and_resize(image, 50)[4:-4], GREEN, 1.0)


def test_whole_square_letterboxes_in_grey() -> None:
    image = Image.new("RGB", (300, 100), RED)
    assert whole_square(300, 100) == Square(0, -100, 300)
    pixels = square_pixels(image, whole_square(300, 100), 60)  # the photo fills rows 20-40
    assert_colour(pixels[22:38], RED, 1.0)
    grey = (int(preprocess.MEAN),) * 3
    assert_colour(pixels[:18], grey, 0.0)
    assert_colour(pixels[42:], grey, 0.0)


def test_a_square_past_the_edge_shows_the_photo_where_it_is() -> None:
    image = Image.new("RGB", (100, 100), RED)
    image.paste(GREEN, (50, 0, 100, 100))  # right half green
    pixels = square_pixels(image, Square(50, 0, 100), 40)  # the green half, then nothing
    assert_colour(pixels[:, 2:18], GREEN, 1.0)
    assert_colour(pixels[:, 22:], (int(preprocess.MEAN),) * 3, 0.0)


def test_the_centre_square_is_the_largest_inside() -> None:
    assert centre_square(160, 90) == Square(35, 0, 90)
    assert centre_square(90, 160) == Square(0, 35, 90)


@pytest.mark.reliability
def test_a_one_pixel_image_fills_the_input() -> None:
    pixels = load_image(encode(Image.new("RGB", (1, 1), RED), "PNG"), 224)
    assert pixels.shape == (224, 224, 3)
    assert_colour(pixels, RED, 0.0)


@pytest.mark.reliability
def test_a_hundred_megapixel_jpeg_is_decoded_at_reduced_scale() -> None:
    photo = encode(Image.new("L", (12_500, 8_000), 128), "JPEG", quality=50)  # 100 Mpx
    image = load_rgb(photo, min_side=224)
    assert image.size == (1563, 1000)  # drafted at 1/8: never 100 Mpx in memory
    assert load_image(photo, 224).shape == (224, 224, 3)


def test_upscales_small_images() -> None:
    pixels = load_image(encode(Image.new("RGB", (10, 20), RED), "PNG"), 224)
    assert pixels.shape == (224, 224, 3)
    assert_colour(pixels, RED, 0.0)


# --- errors -----------------------------------------------------------------------------


def assert_user_message(error: ImageError) -> None:
    message = str(error)
    assert isinstance(error, ValueError)
    assert message and "\n" not in message and "Traceback" not in message


@pytest.mark.reliability
def test_pillow_bomb_limit_becomes_too_large() -> None:
    with pytest.raises(ImageTooLargeError) as caught:
        load_rgb(png_declaring(20_000, 20_000))
    assert_user_message(caught.value)


@pytest.mark.reliability
def test_our_bomb_limit_is_checked_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match=r"12000×12000"):
        load_rgb(png_declaring(12_000, 12_000))
    assert MAX_PIXELS < 12_000 * 12_000


@pytest.mark.reliability
def test_real_bomb_png_is_refused() -> None:
    photo = encode(Image.new("1", (12_000, 12_000)), "PNG")
    assert len(photo) < 1_000_000
    with pytest.raises(ImageTooLargeError):
        load_rgb(photo)


def test_pillow_warning_threshold_does_not_reject_allowed_sizes() -> None:
    # 100 Mpx (a big phone photo) is above Pillow's default warning limit but below ours, so
    # even with warnings as errors decoding must be attempted (failing only for lack of pixels).
    assert 10_000 * 10_000 <= MAX_PIXELS <= Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TruncatedImageError):
            load_rgb(png_declaring(10_000, 10_000))


@pytest.mark.reliability
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "HEIF"])
def test_truncated_image_is_reported(fmt: str) -> None:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    photo = encode(image, fmt)
    with pytest.raises(TruncatedImageError) as caught:
        load_rgb(photo[: len(photo) // 2])
    assert_user_message(caught.value)


@pytest.mark.reliability
@pytest.mark.parametrize(
    "photo",
    [b"", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", b"hello, world\n" * 20],
)
def test_non_images_are_rejected(photo: bytes) -> None:
    with pytest.raises(NotAnImageError) as caught:
        load_rgb(photo)
    assert_user_message(caught.value)
    assert "not an image" in str(caught.value)


def zip_of(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.reliability
def test_a_zip_named_like_a_photo_is_not_an_image() -> None:
    with pytest.raises(NotAnImageError):
        load_rgb(zip_of("dog.jpg", noisy_jpeg()))


@pytest.mark.reliability
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "HEIF"])
@pytest.mark.parametrize("where", [0.05, 0.5, 0.9])
def test_corrupt_bytes_inside_an_image_give_an_image_or_an_image_error(fmt: str,
                                                                       where: float) -> None:
    photo = bytearray(encode(Image.open(io.BytesIO(noisy_jpeg(128, 128))), fmt))
    start = int(len(photo) * where)
    photo[start:start + 64] = bytes(range(64))
    try:
        image = load_rgb(bytes(photo))
    except ImageError as error:
        assert_user_message(error)
    else:  # decoders read past damage in the pixel data: a garbled photo, but a photo
        assert image.mode == "RGB"


def test_truncated_images_do_not_flip_global_pillow_state() -> None:
    with pytest.raises(TruncatedImageError):
        load_rgb(noisy_jpeg()[:2000])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_error_hierarchy() -> None:
    for cls in (NotAnImageError, TruncatedImageError, ImageTooLargeError):
        assert issubclass(cls, ImageError)
        assert issubclass(cls, ValueError)


# --- normalisation ----------------------------------------------------------------------


def test_normalize_numpy() -> None:
    out = normalize(np.array([0, 127, 255], dtype=np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [-127 / 128, 0.0, 1.0])


def test_normalize_jax() -> None:
    jnp = pytest.importorskip("jax.numpy")
    out = normalize(jnp.asarray([0, 255], dtype=jnp.uint8))
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out), [-127 / 128, 1.0])


# --- random bytes --------------------------------------------------------------------------

# The first bytes of each format the decoders recognise, so random tails reach the decoders
# rather than stopping at "not an image".
MAGICS = [b"", b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\0\0\0\0WEBPVP8 ",
          b"\0\0\0\x18ftypheic", b"\0\0\0\x1cftypavif", b"BM", b"II*\0", b"MM\0*",
          b"%PDF-1.4", b"PK\x03\x04"]


@pytest.mark.reliability
@settings(max_examples=150, deadline=None)
@given(magic=st.sampled_from(MAGICS), tail=st.binary(max_size=2048))
def test_random_bytes_raise_only_image_errors(magic: bytes, tail: bytes) -> None:
    try:
        load_image(magic + tail, 32)
    except ImageError as error:
        assert_user_message(error)


VALID = {fmt: encode(Image.open(io.BytesIO(noisy_jpeg(48, 32))), fmt)
         for fmt in ("JPEG", "PNG", "GIF", "WEBP", "HEIF", "TIFF")}


@pytest.mark.reliability
@settings(max_examples=150, deadline=None)
@given(fmt=st.sampled_from(sorted(VALID)), data=st.data())
def test_damaged_photos_raise_only_image_errors(fmt: str, data: st.DataObject) -> None:
    photo = bytearray(VALID[fmt])
    for _ in range(data.draw(st.integers(1, 8), "changes")):
        at = data.draw(st.integers(0, len(photo) - 1), "at")
        photo[at] = data.draw(st.integers(0, 255), "byte")
    cut = data.draw(st.integers(1, len(photo)), "length")
    try:
        load_image(bytes(photo[:cut]), 32)
    except ImageError as error:
        assert_user_message(error)
