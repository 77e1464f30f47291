"""The photo sent back with numbered boxes: sized for Telegram, every box drawn."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageColor

from bot.boxes import COLOURS, SENT_SIDE, boxed_photo
from model.answers import Box


def grey_photo(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(buffer, "PNG")
    return buffer.getvalue()


def test_boxes_are_drawn_in_their_colours_on_a_photo_no_bigger_than_telegram_shows() -> None:
    sent = Image.open(io.BytesIO(boxed_photo(grey_photo(2600, 1300),
                                             [Box(0.0, 0.0, 0.5, 1.0), Box(0.5, 0.0, 1.0, 1.0)])))
    assert sent.format == "JPEG" and sent.size == (SENT_SIDE, SENT_SIDE // 2)
    pixels = np.asarray(sent.convert("RGB")).astype(int)
    for x, colour in ((SENT_SIDE // 4, COLOURS[0]), (SENT_SIDE * 3 // 4, COLOURS[1])):
        frame = pixels[-2, x]  # the bottom edge of each box
        assert np.abs(frame - ImageColor.getrgb(colour)).max() < 40


def test_a_box_thinner_than_a_pixel_at_the_edge_is_still_drawn() -> None:
    sent = boxed_photo(grey_photo(400, 300), [Box(0.2, 1.0, 0.6, 1.0), Box(1.0, 0.1, 1.0, 0.5)])
    assert Image.open(io.BytesIO(sent)).size == (400, 300)
