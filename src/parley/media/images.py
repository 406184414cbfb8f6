"""Image processing for attachments: safe decoding, a clean original, WebP thumbnails.

Everything here is CPU-bound and synchronous: callers run ``process_image`` in a worker
process with a memory cap and a time limit (``media.image_workers``).

Safety (DESIGN §3):
- Pillow may only use the decoder of the sniffed format (``Image.open(formats=...)``), so a
  file cannot pick a decoder by lying about itself.
- The pixel count is checked from the header, *before* decoding: a decompression bomb (a
  tiny PNG declaring 100,000 x 100,000 pixels) is refused without allocating anything.
  Pillow's own bomb guard (``DecompressionBombWarning`` / ``Error``) is caught too.
- So is the total over every frame of an animation (a small GIF of many large frames),
  and samples deeper than 8 bits count double (they decode to 2-4 bytes each and are
  converted at least once on the way to thumbnails).
- Truncated or corrupt data fails the full decode here, not later in a browser.
- The served "original" is re-encoded from the decoded pixels: EXIF (GPS, camera serials),
  XMP, comments and anything appended after the image (polyglots) are gone; the EXIF
  orientation is applied to the pixels first. The ICC colour profile is kept.
- Animated GIF / WebP keep their animation in the original; thumbnails are the first frame.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from parley.media.sniff import MediaType

THUMBNAIL_SIZES = (320, 1280)
THUMBNAIL_CONTENT_TYPE = "image/webp"
# Re-encoding quality for lossy originals: visually lossless, far smaller than 100.
ORIGINAL_QUALITY = 90
THUMBNAIL_QUALITY = 80
# Modes Pillow decodes deeper than 8 bits per sample (16-bit PNG greys, 32-bit ints and
# floats): each pixel counts as two against the limits.
DEEP_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
DEEP_PIXEL_WEIGHT = 2
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError)


class ImageRejected(Exception):
    """Base of the reasons an image is refused."""


class ImageTooLarge(ImageRejected):
    """More pixels than allowed (includes decompression bombs)."""


class ImageUnreadable(ImageRejected):
    """Corrupt, truncated, or not really of the sniffed format."""


@dataclass(frozen=True, slots=True)
class ImageVariant:
    name: str  # "original", "thumb320", ...
    path: Path
    content_type: str
    width: int
    height: int
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    width: int
    height: int
    animated: bool
    variants: tuple[ImageVariant, ...]


def thumbnail_variant(size: int) -> str:
    return f"thumb{size}"


def process_image(
    source: Path,
    media_type: MediaType,
    workdir: Path,
    *,
    max_pixels: int,
    max_total_pixels: int | None = None,
    thumbnail_sizes: Sequence[int] = THUMBNAIL_SIZES,
) -> ProcessedImage:
    """Decode ``source`` and write the clean original and thumbnails into ``workdir``.
    ``max_pixels`` bounds one frame, ``max_total_pixels`` (default: the same) all frames
    together; deep samples count double against both."""
    total_limit = max_pixels if max_total_pixels is None else max_total_pixels
    assert media_type.pillow_format is not None
    try:
        with Image.open(source, formats=[media_type.pillow_format]) as image:
            width, height = image.size
            if width < 1 or height < 1:
                raise ImageUnreadable("the image has no pixels")
            weight = DEEP_PIXEL_WEIGHT if image.mode in DEEP_MODES else 1
            deep = " (counted twice: more than 8 bits per sample)" if weight > 1 else ""
            if width * height * weight > max_pixels:
                raise ImageTooLarge(f"{width}x{height} is more than {max_pixels:,} pixels{deep}")
            frames = getattr(image, "n_frames", 1)
            animated = frames > 1
            if width * height * weight * frames > total_limit:
                raise ImageTooLarge(
                    f"{frames} frames of {width}x{height} are more than {total_limit:,} pixels"
                )
            original = workdir / "original"
            if animated:
                first = _save_animation(image, media_type, original)
            else:
                image.load()
                icc_profile = image.info.get("icc_profile")  # kept: colours, not metadata
                first = _upright(image)
                _save_still(first, media_type, original, icc_profile)
            variants = [_variant("original", original, media_type.content_type, first.size)]
            variants.extend(_thumbnails(first, workdir, thumbnail_sizes))
            return ProcessedImage(first.width, first.height, animated, tuple(variants))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(str(exc)) from None
    except ImageRejected:
        raise
    except _DECODE_ERRORS as exc:
        raise ImageUnreadable(str(exc) or type(exc).__name__) from None


def _upright(image: Image.Image) -> Image.Image:
    """The pixels turned as the EXIF orientation says, with no metadata attached."""
    pixel_info = _pixel_info(image)
    # No copy when nothing turns: a 50-megapixel image is 150 MB per copy.
    clean = ImageOps.exif_transpose(image) or image
    clean.info = pixel_info
    return clean


def _pixel_info(image: Image.Image) -> dict[str | tuple[int, int], object]:
    """The part of ``info`` that describes pixels (transparency), not metadata."""
    return {key: image.info[key] for key in ("transparency",) if key in image.info}


def _save_still(
    image: Image.Image, media_type: MediaType, target: Path, icc_profile: bytes | None
) -> None:
    options: dict[str, object] = {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    fmt = media_type.pillow_format
    if fmt == "JPEG":
        if image.mode not in {"L", "RGB", "CMYK"}:
            image = image.convert("RGB")
        options.update(quality=ORIGINAL_QUALITY, optimize=True)
    elif fmt == "WEBP":
        options.update(quality=ORIGINAL_QUALITY)
    elif fmt == "GIF":
        options.update(comment=b"")
    image.save(target, format=fmt, **options)


def _save_animation(image: Image.Image, media_type: MediaType, target: Path) -> Image.Image:
    """Re-encode every frame (metadata dropped); returns the first frame, upright."""
    fmt = media_type.pillow_format
    if fmt == "GIF":
        # Pillow copies each frame's info (comments included) unless told otherwise.
        image.save(target, format="GIF", save_all=True, comment=b"")
    else:
        image.save(target, format="WEBP", save_all=True, quality=ORIGINAL_QUALITY, exif=b"", xmp=b"")
    image.seek(0)
    first = next(iter(ImageSequence.Iterator(image))).copy()
    first.info = _pixel_info(image)
    return first


def _thumbnails(image: Image.Image, workdir: Path, sizes: Sequence[int]) -> list[ImageVariant]:
    """WebP thumbnails that fit in ``size`` x ``size`` (never enlarged), largest first so
    each smaller one is made from the previous one (cheaper, same quality)."""
    mode = "RGBA" if image.mode in {"RGBA", "LA", "PA", "P"} or "transparency" in image.info else "RGB"
    current = image.convert(mode) if image.mode != mode else image
    variants: list[ImageVariant] = []
    for size in sorted(sizes, reverse=True):
        current = _fit(current, size)
        name = thumbnail_variant(size)
        path = workdir / name
        current.save(path, format="WEBP", quality=THUMBNAIL_QUALITY, method=4)
        variants.append(_variant(name, path, THUMBNAIL_CONTENT_TYPE, current.size))
    variants.sort(key=lambda v: v.width * v.height)
    return variants


def _fit(image: Image.Image, box: int) -> Image.Image:
    """A new image fitting in ``box`` x ``box``, aspect kept, never enlarged."""
    scale = min(1.0, box / max(image.width, image.height))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if size == image.size:
        return image.copy()
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _variant(name: str, path: Path, content_type: str, size: tuple[int, int]) -> ImageVariant:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return ImageVariant(
        name=name,
        path=path,
        content_type=content_type,
        width=size[0],
        height=size[1],
        size=path.stat().st_size,
        sha256=digest.hexdigest(),
    )
