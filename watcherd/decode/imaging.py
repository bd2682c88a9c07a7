"""Everything that decodes with Pillow and hashes with ImageHash: guarded decoding,
normalization, hash and thumbnail (the metadata it writes into PNG text chunks is
``chunks``).

The same normalization feeds the hash and the thumbnail, so a name can be recomputed
anywhere from the rules documented in the manual (docs/):

1. decode the first frame;
2. apply the EXIF orientation (the hash and the size describe the picture as shown);
   HEIF files come out of pillow-heif already turned (libheif applies the container's
   rotation and pillow-heif resets the EXIF tag to 1), so they are turned exactly once;
3. flatten any transparency onto ``background`` (opaque white by default); premultiplied
   alpha (``La``, from TIFF) is first made straight;
4. bring modes ImageHash cannot read to 8 bits: 16-bit samples keep their top 8 bits,
   32-bit integer and float samples are stretched linearly from their minimum to
   their maximum; CMYK, YCbCr, LAB and HSV become RGB, 1-bit becomes L.

A plain RGB JPEG without an orientation tag passes through unchanged, so its hash is
exactly ``imagehash.whash(Image.open(path))``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings
from collections.abc import Callable
from datetime import datetime, timezone

import imagehash
import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageFile, ImageOps, ImageStat, IptcImagePlugin, PngImagePlugin, UnidentifiedImageError

from watcherd.core import crops, xmp
from watcherd.core.errors import TRUNCATED, ImageError
from watcherd.core.exif import Exif
from watcherd.core.keywords import iptc_keywords, read_keywords
from watcherd.decode.chunks import describe, png_bytes, xmp_packet
from watcherd.decode.decoded import Decoded
from watcherd.decode.rendered import Rendered, RenderSpec, summarize_warnings
from watcherd.decode.windows import window_hashes

# Originals may carry bigger text chunks (a 2 MB XMP packet is legal); allow them while
# decoding, still bounded, and leave them out of the thumbnail.
ORIGINAL_TEXT_CHUNK = 16 * 1024 * 1024

_HASHES: dict[str, Callable[..., imagehash.ImageHash]] = {
    "whash": imagehash.whash,
    "phash": imagehash.phash,
    "dhash": imagehash.dhash,
    "average_hash": imagehash.average_hash,
}

# HEIC/HEIF through libheif; AVIF is Pillow's own. Embedded thumbnails are never needed.
pillow_heif.register_heif_opener(thumbnails=False)

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
# Premultiplied grey (La, from TIFF) has no direct conversion to RGBA: straight first.
_STRAIGHT_ALPHA = {"La": "LA"}
_TO_RGB_MODES = frozenset({"CMYK", "YCbCr", "LAB", "HSV", "RGBX", "P"})


# decode: fast. JPEG files are decoded at the smallest DCT scale (1/2, 1/4 or 1/8)
# that keeps the short side at least FAST_SIDE pixels, and the wavelet hash always
# works on a FAST_SIDE x FAST_SIDE picture instead of the largest power of 2 that
# fits the image (1024 for a 6 MP photo).
FAST_SIDE = 256


def decode(data: bytes, formats: tuple[str, ...], max_pixels: int, draft_side: int | None = None) -> Decoded:
    """Decode ``data`` into a loaded image, or raise ImageError saying why not.

    Only ``formats`` are tried, so a renamed EPS or PDF never reaches its parser.
    Pillow's decompression-bomb warning is an error here, and truncated files fail
    instead of being padded with grey. With ``draft_side``, a JPEG is decoded at a
    reduced scale whose short side stays at least that long.
    """
    if not data:
        raise ImageError("empty file (zero bytes)")
    Image.MAX_IMAGE_PIXELS = max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    PngImagePlugin.MAX_TEXT_CHUNK = ORIGINAL_TEXT_CHUNK
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=list(formats))
            size = im.size
            if draft_side is not None and im.format == "JPEG":
                im.draft(None, (draft_side, draft_side))
            im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"too many pixels (decompression bomb guard): {exc}") from None
    except UnidentifiedImageError:
        raise ImageError(f"not an image in an allowed format ({', '.join(formats)})") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        text = str(exc) or type(exc).__name__
        if "truncated" in text:
            raise ImageError(f"{TRUNCATED}: {text}", transient=True) from None
        raise ImageError(f"cannot decode image: {text}") from None
    except MemoryError:
        raise ImageError("image too large to decode in memory") from None
    fmt = im.format or "unknown"
    return Decoded(image=im, format=fmt, format_description=getattr(im, "format_description", "") or fmt, size=size)


def _to_8bit(im: Image.Image) -> Image.Image:
    arr = np.asarray(im)
    if im.mode.startswith("I;16"):
        out = (arr.astype(np.uint32) >> 8).astype(np.uint8)
    else:
        arr = arr.astype(np.float64)
        finite = arr[np.isfinite(arr)]
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 0.0
        if hi <= lo:
            out = np.zeros(arr.shape, dtype=np.uint8)
        else:
            scaled = np.nan_to_num((arr - lo) * (255.0 / (hi - lo)), nan=0.0, posinf=255.0, neginf=0.0)
            out = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(out, mode="L")


def normalize(im: Image.Image, background: str = "#ffffff") -> Image.Image:
    """Return the RGB or L image that both the hash and the thumbnail are made from."""
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    shown = im
    if orientation(im) != 1:  # upright pictures skip exif_transpose, which would copy them
        with contextlib.suppress(Exception):  # a broken EXIF block costs only the orientation
            shown = ImageOps.exif_transpose(im) or im
    mode = shown.mode
    if mode == "P" and "transparency" in shown.info:
        shown = shown.convert("RGBA")
        mode = "RGBA"
    if mode in _ALPHA_MODES:
        straight = shown.convert(_STRAIGHT_ALPHA[mode]) if mode in _STRAIGHT_ALPHA else shown
        rgba = straight.convert("RGBA")
        base = Image.new("RGBA", rgba.size, background)
        base.alpha_composite(rgba)
        return base.convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _to_8bit(shown)
    if mode == "1":
        return shown.convert("L")
    if mode in _TO_RGB_MODES:
        return shown.convert("RGB")
    if mode in ("RGB", "L"):
        return shown
    return shown.convert("RGB")


def perceptual_hash(im: Image.Image, algorithm: str = "whash", size: int = 8, *, fast: bool = False) -> str:
    """Hex string of the configured ImageHash function over ``im``.

    ``fast`` fixes whash's wavelet scale at FAST_SIDE (other functions already work
    on a small fixed size and are unchanged).
    """
    try:
        func = _HASHES[algorithm]
    except KeyError:
        raise ImageError(f"unknown hash algorithm {algorithm!r}") from None
    if algorithm == "whash":
        return str(wavelet_hash(im, size, max(FAST_SIDE, size) if fast else None))
    return str(func(im, hash_size=size))


# A block mean this close to the median is a tie that rounding inside pywt decides.
_TIE = 1e-6


def wavelet_hash(im: Image.Image, hash_size: int = 8, image_scale: int | None = None) -> imagehash.ImageHash:
    """``imagehash.whash`` (Haar, lowest frequency removed), bit for bit, about twice as fast.

    With the Haar wavelet the low band after ``log2(block)`` levels is the block sums
    of the picture scaled by one constant, and removing the lowest frequency only
    subtracts the mean from every block alike, so neither changes which blocks lie
    above the median. The wavelet transforms can therefore be replaced by block sums.
    When a block lies within rounding distance of the median, pywt's rounding decides
    the bit, so that picture is handed to ImageHash itself.
    """
    if image_scale is None:
        image_scale = max(2 ** int(np.log2(min(im.size))), hash_size)
    # Exactly the picture whash makes, so the fallback below sees the same pixels.
    small = im.convert("L").resize((image_scale, image_scale), Image.Resampling.LANCZOS)
    block = image_scale // hash_size
    pixels = np.asarray(small, dtype=np.float64)
    low = pixels.reshape(hash_size, block, hash_size, block).sum(axis=(1, 3)) / (255.0 * block)
    median = np.median(low)
    if float(np.abs(low - median).min()) <= _TIE:
        return imagehash.whash(small, hash_size=hash_size, image_scale=image_scale)
    return imagehash.ImageHash(low > median)


def orientation(im: Image.Image) -> int:
    """The EXIF orientation (1 when absent or unreadable)."""
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) else 1


def displayed_size(decoded: Decoded, turn: int, norm: Image.Image) -> tuple[int, int]:
    """The picture's full size as shown (after EXIF orientation), even when decoded in draft."""
    if decoded.image.size == decoded.size:
        return norm.size
    w, h = decoded.size
    return (h, w) if turn in (5, 6, 7, 8) else (w, h)


# Below this standard deviation of grey levels (0-255) a picture is flat or blank, and
# every hash function gives it the same few values.
LOW_INFORMATION_STDDEV = 3.0


def is_low_information(im: Image.Image) -> bool:
    """True for flat or nearly blank pictures, whose hash says nothing about them."""
    grey = im.convert("L")
    grey.thumbnail((256, 256))
    return float(ImageStat.Stat(grey).stddev[0]) < LOW_INFORMATION_STDDEV


def thumbnail(im: Image.Image, max_side: int) -> Image.Image:
    """A new image no larger than ``max_side`` on its longer side (``im`` is untouched)."""
    w, h = im.size
    if max(w, h) <= max_side:
        return im.copy()
    scale = max_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # reducing_gap: a cheap box reduction first, as Image.thumbnail does, without its copy.
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def keywords_of(im: Image.Image, sidecar: bytes = b"") -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """The tags a photo's keywords give (its XMP packet, its IPTC Keywords, then ``sidecar``:
    the bytes of an XMP sidecar dropped beside it), the hierarchies among them (``a|b``), and
    why any XMP was not read ("" if all was).

    Runs in the decoder sandbox, like the decoding: this is other people's XML (``xmp``).
    """
    found: list[str] = []
    refused: list[str] = []
    packet = xmp_packet(im)
    if packet:
        try:
            found.extend(xmp.keywords_in(packet))
        except xmp.Refused as exc:
            refused.append(f"the photo's XMP: {exc.reason}")
    try:
        iptc = (IptcImagePlugin.getiptcinfo(im) if isinstance(im, ImageFile.ImageFile) else None) or {}
    except Exception as exc:  # a broken IPTC block costs only its keywords
        iptc = {}
        refused.append(f"the photo's IPTC: {type(exc).__name__}")
    raw = iptc.get((2, 25))
    values = [raw] if isinstance(raw, bytes) else [v for v in raw or [] if isinstance(v, bytes)]
    charset = iptc.get((1, 90))
    found.extend(iptc_keywords(values, charset if isinstance(charset, bytes) else None))
    if sidecar:
        try:
            found.extend(xmp.keywords_in(sidecar))
        except xmp.Refused as exc:
            refused.append(f"the sidecar beside it: {exc.reason}")
    tags, paths = read_keywords(found)
    return tuple(tags), tuple(paths), "; ".join(refused)


def render(data: bytes, spec: RenderSpec, filename: str, sha256: str, now: float, sidecar: bytes = b"") -> Rendered:
    """Bytes of an original in, hash and thumbnail PNG out: the whole decoding job.

    With ``spec.keywords``, the photo's keywords (and those of ``sidecar``, the bytes of an
    XMP sidecar dropped beside it) come back as ``Rendered.keywords``.

    Warnings Pillow and its plugins raise meanwhile (corrupt EXIF, odd TIFF tags) are
    collected into ``Rendered.warnings``, or into the reason of the ImageError, instead
    of being printed; the decompression-bomb warning stays an error (see ``decode``).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rendered = _render(data, spec, filename, sha256, now, sidecar)
        except ImageError as exc:
            said = summarize_warnings([str(w.message) for w in caught])
            if not said:
                raise
            raise ImageError(f"{exc.reason} (decoder: {'; '.join(said)})", transient=exc.transient) from None
    said = summarize_warnings([str(w.message) for w in caught])
    return dataclasses.replace(rendered, warnings=said) if said else rendered


def _render(data: bytes, spec: RenderSpec, filename: str, sha256: str, now: float, sidecar: bytes) -> Rendered:
    fast = spec.decode == "fast"
    decoded = decode(data, spec.formats, spec.max_pixels, FAST_SIDE if fast else None)
    keywords: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    refused = ""
    if spec.keywords:
        try:
            keywords, paths, refused = keywords_of(decoded.image, sidecar)
        except (Exception, MemoryError) as exc:  # keywords are a bonus: the image is ingested without them
            refused = f"keywords not read: {type(exc).__name__}"
    try:
        turn = orientation(decoded.image)
        norm = normalize(decoded.image, spec.background)
        width, height = displayed_size(decoded, turn, norm)
        hash_hex = perceptual_hash(norm, spec.algorithm, spec.hash_size, fast=fast)
        text = describe(
            decoded,
            filename=filename,
            width=width,
            height=height,
            hash_hex=hash_hex,
            algorithm=spec.algorithm,
            hash_size=spec.hash_size,
            decode_mode=spec.decode,
            sha256=sha256,
            file_size=len(data),
            now=datetime.fromtimestamp(now, timezone.utc),
        )
        thumb = thumbnail(norm, spec.thumbnail_size)
        # Window hashes come from the thumbnail, so any thumbnail gives them back (scan).
        windows = crops.join(window_hashes(thumb))
        if windows:
            text["crops"] = windows
        png = png_bytes(thumb, text)
        exif = Exif.of(text)
    except MemoryError:
        raise ImageError("image too large to decode in memory") from None
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot convert image: {exc}") from None
    finally:
        decoded.image.close()
    # Judged on the thumbnail: flatness survives downscaling, and it costs nothing.
    return Rendered(
        width,
        height,
        hash_hex,
        decoded.format,
        png,
        is_low_information(thumb),
        keywords=keywords,
        keyword_paths=paths,
        refused=refused,
        crops=windows,
        exif=exif,
    )
