"""Pure values and rules, the ground floor: settings, names and tags, what a path is to a
library, typed records and their JSON, the documents ``--json`` prints, outcomes, events, what
a picture's EXIF says, the keeper rule, keywords and the XMP sidecar's text. Nothing here writes
a file, starts a process or reads the clock (``config`` reads its YAML file, and that is all);
everything above builds on it.
"""

__all__ = [
    "collisionrecords",
    "config",
    "crops",
    "documents",
    "errors",
    "events",
    "exif",
    "filters",
    "keeper",
    "keywords",
    "naming",
    "nearpairs",
    "outcomes",
    "places",
    "records",
    "xmp",
]
