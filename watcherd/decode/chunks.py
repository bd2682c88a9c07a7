"""The original's metadata as a thumbnail's PNG text chunks: written when a thumbnail is made, read back.

Reading needs only Pillow's PNG plugin, so commands and the page that read chunks do
not load the decoders (HEIF, ImageHash, numpy) that ``imaging`` brings.
"""

from __future__ import annotations

import io
import json
import warnings
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from PIL import ExifTags, Image, PngImagePlugin

from watcherd import __version__
from watcherd.core.naming import safe_text

if TYPE_CHECKING:
    from watcherd.decode.decoded import Decoded

# Pillow refuses to read a text chunk that decompresses to more than 1 MiB; keep every
# value well under that so a thumbnail always stays readable.
MAX_TEXT_VALUE = 256 * 1024


def _bounded(text: str) -> str | None:
    return text if len(text.encode("utf-8", "surrogatepass")) <= MAX_TEXT_VALUE else None


# From the Exif sub-IFD: DateTimeOriginal, DateTimeDigitized, their time zone offsets and
# DateTimeOriginal's fraction of a second (bursts), and the size the camera recorded (the review
# page's keeper rule: a resized copy no longer has it).
EXIF_DATES = (
    ExifTags.Base.DateTimeOriginal,
    ExifTags.Base.DateTimeDigitized,
    ExifTags.Base.OffsetTimeOriginal,
    ExifTags.Base.OffsetTimeDigitized,
    ExifTags.Base.SubsecTimeOriginal,  # frames of a burst taken within one second differ here
    ExifTags.Base.ExifImageWidth,
    ExifTags.Base.ExifImageHeight,
)
# From the GPS IFD: where the picture was taken (the review page's "place").
GPS_PLACE = (
    ExifTags.GPS.GPSLatitudeRef,
    ExifTags.GPS.GPSLatitude,
    ExifTags.GPS.GPSLongitudeRef,
    ExifTags.GPS.GPSLongitude,
)


def _exif_text(im: Image.Image) -> str | None:
    try:
        exif = im.getexif()
    except Exception:
        return None
    if not exif:
        return None
    fields = {}
    # IFD0, plus the dates in the Exif sub-IFD: when the picture was taken (the review page's keeper rule).
    try:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:
        sub = {}
    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:
        gps = {}
    dated = [(ExifTags.TAGS.get(tag, str(tag)), sub[tag]) for tag in EXIF_DATES if tag in sub]
    place = [(ExifTags.GPSTAGS.get(tag, str(tag)), gps[tag]) for tag in GPS_PLACE if tag in gps]
    for name, value in [*((ExifTags.TAGS.get(t, str(t)), v) for t, v in exif.items()), *dated, *place]:
        if isinstance(value, bytes):
            value = value[:64].hex()
        fields[name] = str(value)[:1024]
    return json.dumps(fields, ensure_ascii=False, sort_keys=True)


def xmp_packet(im: Image.Image) -> bytes | None:
    """The XMP packet a decoded image carries (JPEG APP1, PNG iTXt, WebP, TIFF tag 700, HEIF), as bytes."""
    raw = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if raw is None and hasattr(im, "tag_v2"):
        raw = im.tag_v2.get(700)
    if raw is None:
        return None
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, tuple):  # a TIFF tag read as a tuple of byte values
        try:
            return bytes(raw)
        except (TypeError, ValueError):
            return None
    return str(raw).encode("utf-8", "surrogatepass")


def _xmp_text(im: Image.Image) -> str | None:
    raw = xmp_packet(im)
    return None if raw is None else raw.decode("utf-8", "replace")


def describe(
    decoded: Decoded,
    *,
    filename: str,
    width: int,
    height: int,
    hash_hex: str,
    algorithm: str,
    hash_size: int,
    sha256: str,
    file_size: int,
    now: datetime | None = None,
    decode_mode: str = "reference",
) -> dict[str, str]:
    """The PNG text chunks for a thumbnail: one plain-text value per field.

    XMP is copied as the raw packet (its keywords are read apart, by ``imaging.keywords_of``);
    a packet or EXIF block too large to stay readable is left out and says so.
    """
    im = decoded.image
    when = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    text = {
        "original_filename": safe_text(filename),
        "width": str(width),
        "height": str(height),
        "format": decoded.format,
        "format_description": decoded.format_description,
        "mode": im.mode,
        "bands": ",".join(im.getbands()),
        "hash": hash_hex,
        "hash_algorithm": algorithm,
        "hash_size": str(hash_size),
        "hash_decode": decode_mode,
        "sha256": sha256,
        "file_size": str(file_size),
        "ingested": when,
        "software": f"watcherd {__version__}",
    }
    for key, value in (("xmp", _xmp_text(im)), ("exif", _exif_text(im))):
        if value is None:
            continue
        bounded = _bounded(value)
        if bounded is None:
            text[f"{key}_omitted"] = f"{len(value)} characters, over the {MAX_TEXT_VALUE} limit"
        else:
            text[key] = bounded
    return text


def png_bytes(thumb: Image.Image, text: dict[str, str]) -> bytes:
    """Encode a thumbnail as PNG with ``text`` as text chunks (compressed when long)."""
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value, zip=len(value) > 512)
    buf = io.BytesIO()
    thumb.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def read_text(data: bytes) -> dict[str, str]:
    """The text chunks of a PNG (our thumbnails), or an empty dict if it has none."""
    facts = png_facts(data)
    return facts[0] if facts is not None else {}


def png_facts(data: bytes) -> tuple[dict[str, str], tuple[int, int]] | None:
    """The text chunks before the pixel data and the size of a PNG, or None if it is no PNG.

    Nothing is decoded: Pillow (and so watcherd and the notebook) writes text chunks
    before the image data, where ``Image.open`` reads them. What Pillow warns about while
    opening (an invalid APNG, a huge size) is no concern of the chunks and is not shown:
    a file that is not our thumbnail is decoded in the sandbox, which reports it once.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data), formats=["PNG"])
        with im:
            text = {k: v for k, v in im.info.items() if isinstance(k, str) and isinstance(v, str)}
            exif = im.info.get("exif")
            if isinstance(exif, bytes) and not exif.startswith(b"Exif"):
                text["exif"] = exif.decode("latin-1")  # a text chunk named exif is kept as bytes
            return text, im.size
    except Exception:
        return None
