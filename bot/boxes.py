"""The photo sent back with a numbered box around each dog, so the numbers in the answer
point at the dogs."""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from model.answers import Box
from model.preprocess import load_rgb

SENT_SIDE = 1280  # Telegram shows photos at most this big: a larger one only costs upload time
COLOURS = ("#ffcc00", "#00d0ff", "#ff5cc8", "#7dff5c", "#ff8a3d", "#b18cff")


def boxed_photo(photo_bytes: bytes, boxes: Sequence[Box]) -> bytes:
    """The photo (upright, its longer side at most SENT_SIDE) as a JPEG with ``boxes`` drawn
    on it, each numbered from 1 in a badge at its top-left corner."""
    image = load_rgb(photo_bytes)
    image.thumbnail((SENT_SIDE, SENT_SIDE), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(image)
    width, height = image.size
    line = max(2, round(max(width, height) / 200))
    font = ImageFont.load_default(size=max(14, 8 * line))
    for number, box in enumerate(boxes, 1):
        colour = COLOURS[(number - 1) % len(COLOURS)]
        left, top = box.left * width, box.top * height
        # A box a pixel thin (at the photo's edge) still gets a frame: Pillow refuses x1 < x0.
        corners = (left, top, max(left, box.right * width - 1), max(top, box.bottom * height - 1))
        draw.rectangle(corners, outline=colour, width=line)
        _badge(draw, str(number), corners[:2], colour, font)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _badge(draw: ImageDraw.ImageDraw, text: str, corner: tuple[float, float], colour: str,
           font: ImageFont.FreeTypeFont) -> None:
    """``text`` in black on a ``colour`` square just inside the box's top-left corner."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = (bottom - top) // 3
    side = max(right - left, bottom - top) + 2 * pad
    x, y = corner
    draw.rectangle((x, y, x + side, y + side), fill=colour)
    draw.text((x + side / 2, y + side / 2), text, fill="black", font=font, anchor="mm")
