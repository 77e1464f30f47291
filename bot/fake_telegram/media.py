"""What Telegram keeps of a photo: a JPEG of at most 1280 px and a 90 px thumbnail."""

import io

from PIL import Image, ImageOps, UnidentifiedImageError

THUMBNAIL_SIDE = 90
PHOTO_SIDE = 1280
JPEG_QUALITY = 87

Variant = tuple[bytes, int, int]  # (JPEG bytes, width, height)


def photo_variants(data: bytes) -> list[Variant]:
    """The sizes Telegram keeps of a photo, smallest first.

    A 90 px thumbnail (when the photo is bigger) and the photo itself, re-encoded as JPEG when
    it is larger than 1280 px, is not a JPEG or carries an EXIF rotation (clients apply it).
    Raises ``ValueError`` ("IMAGE_PROCESS_FAILED") for bytes Pillow cannot read.
    """
    image = _open_image(data)
    rotated = image.getexif().get(0x0112, 1) not in (0, 1)
    upright = ImageOps.exif_transpose(image) if rotated else image
    variants = []
    if max(upright.size) > THUMBNAIL_SIDE:
        variants.append(_jpeg(upright, THUMBNAIL_SIDE))
    if max(upright.size) > PHOTO_SIDE or image.format != "JPEG" or rotated:
        variants.append(_jpeg(upright, PHOTO_SIDE))
    else:
        variants.append((data, image.width, image.height))
    return variants


def image_size(data: bytes, default: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of an image, or ``default`` for bytes Pillow cannot read."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return default


def _open_image(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError("IMAGE_PROCESS_FAILED") from error
    width, height = image.size
    if width + height > 10000 or max(width, height) > 20 * min(width, height):
        raise ValueError("PHOTO_INVALID_DIMENSIONS")
    return image


def _jpeg(image: Image.Image, side: int) -> Variant:
    """``image`` shrunk to fit ``side`` x ``side`` and encoded as JPEG."""
    image = image.copy()
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    if image.mode != "RGB":  # JPEG has no alpha: flatten onto white
        background = Image.new("RGB", image.size, "white")
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = background
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), image.width, image.height
