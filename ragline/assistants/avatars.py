"""Avatar images: checked by content, bounded in bytes and pixels, re-encoded.

The client's bytes are never served back: whatever it sent is decoded by Pillow and
re-encoded as WebP, so a polyglot file or stray metadata cannot survive.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from ragline.errors import AvatarTooLarge, InvalidAvatar, UnsupportedMediaType

ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP", "GIF"}
MAX_PIXELS = 4096 * 4096
OUTPUT_MIME = "image/webp"


class UnsupportedAvatarType(UnsupportedMediaType):
    pass


@dataclass(frozen=True, slots=True)
class Avatar:
    content: bytes
    mime: str


def read_limited(stream: BinaryIO, *, limit: int) -> bytes:
    """Read at most ``limit`` bytes; larger input raises ``AvatarTooLarge``."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise AvatarTooLarge(f"Avatar is larger than {limit} bytes.")
    return data


def process_avatar(data: bytes, *, max_side: int) -> Avatar:
    if not data:
        raise InvalidAvatar("Avatar file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ALLOWED_FORMATS:
                raise UnsupportedAvatarType(
                    f"Avatar must be PNG, JPEG, WebP or GIF; content is {image.format}."
                )
            if image.width * image.height > MAX_PIXELS:
                raise InvalidAvatar(f"Avatar has more than {MAX_PIXELS} pixels.")
            image.load()
    except UnidentifiedImageError as exc:
        raise UnsupportedAvatarType("Avatar is not an image (PNG, JPEG, WebP or GIF).") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidAvatar("Avatar has too many pixels.") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidAvatar(f"Avatar image is damaged: {exc}") from exc

    converted = image.convert("RGBA")
    converted.thumbnail((max_side, max_side))
    out = io.BytesIO()
    converted.save(out, format="WEBP", quality=85)
    return Avatar(content=out.getvalue(), mime=OUTPUT_MIME)
