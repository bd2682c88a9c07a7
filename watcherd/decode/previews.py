"""What the review page shows of an original, made in the decoder sandbox (``python -m
watcherd.decode.child`` running ``previews.view``): never in the web process.

- a **preview**: the picture as the thumbnail sees it (first frame, EXIF orientation
  applied, transparency flattened, 16-bit and CMYK brought to 8-bit RGB, a CMYK picture's
  ICC profile honoured), at most ``max_side`` pixels on its longer side, as a JPEG (an RGB
  picture's ICC profile kept, so the browser shows its colours);
- a **difference** of two pictures: both brought to the smaller one's size (at most
  ``max_side``), the larger per-pixel difference of the colour channels drawn as a heat map
  over a dimmed grey copy of the first, with how much differs as a JSON ``note``.

A job's bytes are one frame (``decoder_child.frame``): a JSON header, then the picture(s).
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
from PIL import Image, ImageCms, ImageOps

from watcherd.core.errors import ChannelClosed, ImageError
from watcherd.decode import imaging
from watcherd.decode.child import frame, read_frame
from watcherd.decode.rendered import Rendered, RenderSpec

PREVIEW, DIFFERENCE = "preview", "difference"
QUALITY = 90
CHANGED = 24  # a pixel whose channels differ by more than this (of 255) counts as changed
HEAT = (255, 96, 32)  # what a large difference is drawn in
GAIN = 3.0  # a difference of 85 (of 255) or more is drawn at full heat


def preview_job(data: bytes, max_side: int) -> bytes:
    """The bytes ``view`` takes to make a preview of ``data``."""
    return frame({"kind": PREVIEW, "max_side": max_side}, data)


def difference_job(a: bytes, b: bytes, max_side: int) -> bytes:
    """The bytes ``view`` takes to make the difference of ``a`` and ``b``."""
    return frame({"kind": DIFFERENCE, "max_side": max_side, "first": len(a)}, a + b)


def _shown(data: bytes, spec: RenderSpec) -> tuple[Image.Image, bytes | None]:
    """The picture as shown (oriented, flattened, 8-bit RGB or L) and the ICC profile it keeps."""
    decoded = imaging.decode(data, spec.formats, spec.max_pixels)
    im = decoded.image
    icc = im.info.get("icc_profile") if isinstance(im.info.get("icc_profile"), bytes) else None
    if im.mode == "CMYK" and icc:
        with contextlib.suppress(Exception):  # a broken profile costs only exact colours
            if imaging.orientation(im) != 1:
                im = ImageOps.exif_transpose(im) or im
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            im = ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB") or im
            icc = None
    shown = imaging.normalize(im, spec.background)
    if shown.mode not in ("RGB", "L"):
        shown = shown.convert("RGB")
    return shown, icc if shown.mode == "RGB" else None


def _fit(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    if im.size == size:
        return im
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _bounded(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    w, h = size
    if max(w, h) <= max_side:
        return size
    scale = max_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _jpeg(im: Image.Image, icc: bytes | None = None) -> bytes:
    out = io.BytesIO()
    params: dict[str, object] = {"quality": QUALITY, "subsampling": 0}
    if icc:
        params["icc_profile"] = icc
    im.save(out, format="JPEG", **params)
    return out.getvalue()


def _preview(data: bytes, spec: RenderSpec, max_side: int) -> Rendered:
    shown, icc = _shown(data, spec)
    width, height = shown.size
    small = _fit(shown, _bounded(shown.size, max_side))
    note = json.dumps({"width": width, "height": height, "shown": list(small.size)})
    return Rendered(width, height, "", "JPEG", _jpeg(small, icc), note=note)


def _difference(a: bytes, b: bytes, spec: RenderSpec, max_side: int) -> Rendered:
    first, _ = _shown(a, spec)
    second, _ = _shown(b, spec)
    smaller = min(first.size, second.size, key=lambda s: s[0] * s[1])
    size = _bounded(smaller, max_side)
    one = np.asarray(_fit(first.convert("RGB"), size), dtype=np.int16)
    two = np.asarray(_fit(second.convert("RGB"), size), dtype=np.int16)
    diff = np.abs(one - two).max(axis=2)
    # A fixed scale, so that recompression noise stays dim and a real change is bright.
    heat = np.clip(diff * GAIN, 0, 255) / 255.0
    grey = np.asarray(_fit(first.convert("L"), size), dtype=np.float64) * 0.35 + 20.0
    colour = np.array(HEAT, dtype=np.float64)
    out = grey[..., None] * (1.0 - heat[..., None]) + colour * heat[..., None]
    picture = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), mode="RGB")
    note = {
        "size": list(size),
        "first": list(first.size),
        "second": list(second.size),
        "mean": round(float(diff.mean()), 2),
        "changed": round(float((diff > CHANGED).mean()), 4),
        "largest": int(diff.max()),
    }
    return Rendered(size[0], size[1], "", "JPEG", _jpeg(picture), note=json.dumps(note))


def view(data: bytes, spec: RenderSpec, filename: str, sha256: str, now: float) -> Rendered:
    """The sandbox job: a preview or a difference, as the frame in ``data`` asks.

    ``Rendered.png`` holds the JPEG; ``note`` says the sizes (and for a difference how
    much differs). ``filename``, ``sha256`` and ``now`` are not used (a job's signature).
    """
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        chunk = data[pos : pos + n]
        if len(chunk) != n:
            raise ChannelClosed("a view job is cut short")
        pos += n
        return chunk

    try:
        header, payload = read_frame(read)
        max_side = int(header["max_side"])
        kind = header["kind"]
        cut = int(header.get("first", 0))
    except (ChannelClosed, ValueError, KeyError, TypeError):
        raise ImageError("not a view job") from None
    try:
        if kind == PREVIEW:
            return _preview(payload, spec, max_side)
        if kind == DIFFERENCE:
            return _difference(payload[:cut], payload[cut:], spec, max_side)
    except MemoryError:
        raise ImageError("image too large to decode in memory") from None
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot convert image: {exc}") from None
    raise ImageError(f"unknown view {kind!r}")
