"""What a picture's EXIF says, as a thumbnail's ``exif`` text chunk carries it, and the part of it
an image's record keeps (``Exif``): the fields the keeper rule and bursts read (``keeper``).

Apart from ``keeper`` so that what loads records (``find``, ``status``) does not load the rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["DATE_TAGS", "KEPT_EXIF", "Exif", "exif_fields"]

# EXIF date tags, best first: when the shutter fired, when it was digitized, when the file
# was last written by the camera or an editor (IFD0's DateTime).
DATE_TAGS = ("DateTimeOriginal", "DateTimeDigitized", "DateTime")


def exif_fields(chunks: Mapping[str, str]) -> dict[str, str]:
    """A thumbnail's ``exif`` text chunk (JSON of tag names to values) as a dict, or {}."""
    raw = chunks.get("exif")
    if not raw:
        return {}
    try:
        fields = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}


# The EXIF fields the rule and ``is_burst`` read: the camera, the dates, the size it recorded.
KEPT_EXIF = ("Make", "Model", *DATE_TAGS, "SubsecTimeOriginal", "ExifImageWidth", "ExifImageHeight")


@dataclass(frozen=True)
class Exif:
    """What the rule reads of a picture's EXIF: how many fields it carried and the few it
    compares (``KEPT_EXIF``). An image's record keeps it, so its facts need no thumbnail read."""

    count: int = 0
    fields: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, chunks: Mapping[str, str]) -> Exif:
        """What a thumbnail's text chunks say (its ``exif`` chunk)."""
        fields = exif_fields(chunks)
        return cls(len(fields), {k: fields[k] for k in KEPT_EXIF if k in fields})

    def to_json(self) -> dict[str, object]:
        return {"count": self.count, "fields": dict(self.fields)}

    @classmethod
    def from_json(cls, data: object) -> Exif | None:
        """Read back ``to_json``; None when ``data`` is not one (a record from before it was kept)."""
        if not isinstance(data, dict):
            return None
        count, fields = data.get("count"), data.get("fields")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0 or not isinstance(fields, dict):
            return None
        return cls(count, {k: v for k, v in fields.items() if k in KEPT_EXIF and isinstance(v, str)})
