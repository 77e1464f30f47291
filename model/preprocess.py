"""Image preprocessing shared by training, evaluation, the CLI and the bot.

Every consumer goes through this module so that a photo produces the same pixels
everywhere; bump PREPROCESS_VERSION whenever that output could change, because it
is part of the cache keys for preprocessed data.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

PREPROCESS_VERSION: int = 1
MAX_PIXELS: int = 128_000_000
# Pillow warns above its limit and refuses twice it; align it with ours (a process-wide
# setting, unlike a warnings filter, so decoding threads cannot race on it). Images between
# the two are refused by our own check before their pixels are decoded.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# iPhones save HEIC; Pillow reads AVIF itself, HEIC through the pillow-heif plugin.
pillow_heif.register_heif_opener()
# EfficientNet-Lite expects (x - 127) / 128 on 0-255 RGB.
MEAN, SCALE = 127.0, 128.0

_JPEG_FORMATS = frozenset({"JPEG", "MPO"})  # MPO is what many phones write: JPEG plus extra frames
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
_WIDE_MODES = frozenset({"I", "F"})
# Decoders report damaged data through a grab bag of exception types.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)

PHOTO_FORMATS = "JPEG, PNG, WebP, HEIC, AVIF, GIF, BMP or TIFF"  # for messages
_NOT_AN_IMAGE = f"that file is not an image I can read ({PHOTO_FORMATS})"
_DAMAGED = "that image file is damaged or incomplete"


class _Array(Protocol):
    """Anything with numpy-style astype: numpy and jax arrays alike."""

    def astype(self, dtype: Any) -> Any: ...


ArrayT = TypeVar("ArrayT", bound=_Array)


class ImageError(ValueError):
    """Bytes that cannot be turned into a photo; str(error) is a short human message."""


class NotAnImageError(ImageError):
    """Empty bytes or bytes in a format that is not a readable image."""


class TruncatedImageError(ImageError):
    """The image header is fine but the pixel data is cut short or corrupt."""


class ImageTooLargeError(ImageError):
    """The image declares more than MAX_PIXELS pixels (likely a decompression bomb)."""


def _too_large(width: int, height: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"that image is too large ({width}×{height} pixels); please send a smaller one"
    )


def _open(photo_bytes: bytes) -> Image.Image:
    """Open lazily (header only) and reject oversized images before any pixels are decoded."""
    if not photo_bytes:
        raise NotAnImageError(_NOT_AN_IMAGE)
    try:
        image = Image.open(io.BytesIO(photo_bytes))
    except Image.DecompressionBombError as error:
        # Pillow's own hard limit (2 x MAX_IMAGE_PIXELS) is above ours, so this is a bomb too.
        raise ImageTooLargeError("that image is too large; please send a smaller one") from error
    except UnidentifiedImageError as error:
        raise NotAnImageError(_NOT_AN_IMAGE) from error
    except _DECODE_ERRORS as error:
        raise TruncatedImageError(_DAMAGED) from error
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _too_large(width, height)
    return image


def exif_upright(image: Image.Image) -> Image.Image:
    """Rotate per EXIF; a malformed EXIF block must not cost us the photo."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # EXIF parsing can fail with almost any exception type
        logger.warning("ignoring unreadable EXIF orientation", exc_info=True)
        return image


def _wide_to_rgb(image: Image.Image) -> Image.Image:
    """Scale 16-bit / 32-bit greyscale to 0-255; Pillow's convert() just clips it to white."""
    values = np.nan_to_num(np.asarray(image, dtype=np.float64))
    if image.mode in _SIXTEEN_BIT_MODES:
        values = values / 257.0
    else:
        peak = values.max(initial=0.0)
        if peak > 255.0:
            values = values * (255.0 / peak)
    grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def _on_white(image: Image.Image) -> Image.Image:
    """Composite on white: transparent areas in stickers and logos are meant as background."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES or image.mode in _WIDE_MODES:
        return _wide_to_rgb(image)
    try:
        if image.has_transparency_data:
            return _on_white(image)
        return image.convert("RGB")
    except ValueError as error:  # exotic modes (e.g. LAB) Pillow cannot convert
        raise NotAnImageError(_NOT_AN_IMAGE) from error


def load_rgb(photo_bytes: bytes, min_side: int = 0) -> Image.Image:
    """Decode bytes to an upright RGB image.

    With min_side > 0, JPEGs are decoded at a reduced DCT scale that still keeps
    both sides >= min_side, which makes large phone photos much cheaper to load.
    Raises an ImageError subclass whose str() is a message fit to show a user.
    """
    image = _open(photo_bytes)
    if min_side > 0 and image.format in _JPEG_FORMATS:
        image.draft("RGB", (min_side, min_side))
    try:
        image.load()  # force the full decode so damaged data fails here, not later
    except _DECODE_ERRORS as error:
        raise TruncatedImageError(_DAMAGED) from error
    return _to_rgb(exif_upright(image))


@dataclass(frozen=True)
class Square:
    """A square region of a photo in its pixels (x right, y down from the top-left corner).

    It may reach past the photo's edges: those parts are shown grey (see ``square_pixels``).
    """

    left: float
    top: float
    side: float


def centre_square(width: int, height: int) -> Square:
    """The largest square inside the photo, centred: what the classic centre crop sees."""
    side = min(width, height)
    return Square((width - side) / 2, (height - side) / 2, side)


def whole_square(width: int, height: int) -> Square:
    """The smallest square holding the whole photo, centred: the photo letterboxed."""
    side = max(width, height)
    return Square((width - side) / 2, (height - side) / 2, side)


def square_pixels(image: Image.Image, square: Square, size: int) -> np.ndarray:
    """``square`` of ``image`` resized to a (size, size, 3) uint8 array (bicubic).

    Where the square reaches past the photo the pixels are grey (MEAN, zero once normalised),
    so letterboxing adds no evidence of its own.
    """
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    rgb = _to_rgb(image)
    width, height = rgb.size
    inside = (max(square.left, 0), max(square.top, 0),
              min(square.left + square.side, width), min(square.top + square.side, height))
    scale = size / square.side
    part_size = (max(1, round((inside[2] - inside[0]) * scale)),
                 max(1, round((inside[3] - inside[1]) * scale)))
    # One resize with a source box does crop and scale together, so no intermediate
    # image is built and the filter sees real pixels right up to the crop edge.
    part = rgb.resize(part_size, Image.Resampling.BICUBIC, box=inside, reducing_gap=3.0)
    if part_size == (size, size):  # the square lies inside the photo
        return np.asarray(part, dtype=np.uint8)
    canvas = Image.new("RGB", (size, size), (int(MEAN),) * 3)
    canvas.paste(part, (round((inside[0] - square.left) * scale),
                        round((inside[1] - square.top) * scale)))
    return np.asarray(canvas, dtype=np.uint8)


def crop_and_resize(image: Image.Image, size: int) -> np.ndarray:
    """Resize the short side to `size` and centre-crop; returns a (size, size, 3) uint8 array."""
    return square_pixels(image, centre_square(*image.size), size)


def load_image(photo_bytes: bytes, size: int) -> np.ndarray:
    """Decode bytes into the (size, size, 3) uint8 model input."""
    return crop_and_resize(load_rgb(photo_bytes, size), size)


def normalize(pixels: ArrayT) -> ArrayT:
    """Map 0-255 pixels to the model's float32 input range.

    Plain arithmetic and .astype only, so this works unchanged on numpy and jax arrays.
    """
    return (pixels.astype(np.float32) - MEAN) / SCALE
