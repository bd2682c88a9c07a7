"""What records keep of their thumbnails and older watcherds did not: given from the thumbnails.

Window hashes are a function of the thumbnail's pixels (``decode.windows``), so an image
catalogued by an older watcherd (or adopted from a thumbnail without the ``crops``
chunk) gets them from its thumbnail, decoded in the decoder sandbox like any file,
and the writer adds them to its record. Until then the image is found by its whole
picture only. The EXIF the keeper rule reads (``core.exif.Exif``) is read from the
thumbnail's chunks, for the images in kept near pairs (the ones a near listing looks at);
until then their thumbnails are read for each listing. ``watcherd scan`` does both at its
end, a batch at a time; the daemon does them between the files that arrive (``Fills``), a
smaller batch at a time, after each full scan. A record that changed meanwhile (moved,
replaced) is left for the next pass.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

from watcherd.catalog import Catalog
from watcherd.catalog.cropschema import WINDOWLESS
from watcherd.core import crops
from watcherd.core.config import Config
from watcherd.core.errors import ImageError
from watcherd.core.exif import Exif
from watcherd.core.places import Places
from watcherd.core.records import ImageRecord
from watcherd.decode import chunks
from watcherd.decode.newimage import Renderer, spec_for
from watcherd.decode.rendered import Rendered, RenderSpec

log = logging.getLogger("watcherd")

BATCH = 500  # records updated per transaction
STEP = 50  # the daemon's batch: decoded and written between looks at what arrived
THUMBNAIL_LIMIT = 4 << 20  # larger files under a thumbnail's name are not ours: left alone
# The thumbnail is hashed as it is: no size limit shrinks it before its windows are taken.
AS_IS = 1 << 16
PREFIX = f"v{crops.VERSION}:"  # window hashes of another version are computed again


def _batches(names: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(names), BATCH):
        yield names[start : start + BATCH]


def _read(path: Path) -> bytes | None:
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > THUMBNAIL_LIMIT:
            return None
        return path.read_bytes()
    except OSError:
        return None


def windows_spec(cfg: Config) -> RenderSpec:
    """What the decoder is asked for: the thumbnail's window hashes, as it is."""
    return dataclasses.replace(spec_for(cfg), formats=("PNG",), thumbnail_size=AS_IS, decode="reference")


def fill(cfg: Config, catalog: Catalog, render: Renderer) -> int:
    """Give every present image lacking window hashes those of its thumbnail; how many were given
    (``scan``'s pass: ``Fills``' windows at once, a larger batch at a time)."""
    return Fills(cfg, catalog, render, size=BATCH).windows_pass()


def _note_windowless(catalog: Catalog, names: list[str]) -> None:
    """The images a whole pass found too small for window hashes, so the next asks nothing of them
    (written only when they differ from the note: a write would make the daemon's next pass)."""
    note = {"prefix": PREFIX, "names": sorted(names)}
    if catalog.meta(WINDOWLESS) != note:
        with catalog.transaction():
            catalog.set_meta(WINDOWLESS, note)


def _give_windows(
    places: Places, spec: RenderSpec, catalog: Catalog, render: Renderer, names: list[str]
) -> tuple[int, list[str]]:
    """Give the images ``names`` the window hashes of their thumbnails (decoded, a batch at once, and
    written as one set): how many were given, and the images whose thumbnails were read and are too
    small for any. A thumbnail whose chunks name other bytes than its record is not that image's."""
    submit = getattr(render, "submit", None)
    asked: list[tuple[ImageRecord, Future[Rendered] | Rendered | None]] = []
    for name, rec in catalog.images_named(names).items():
        data = _read(places.absolute(rec.path)) if rec.present else None
        if data is None or chunks.read_text(data).get("sha256", rec.sha256) != rec.sha256:
            continue
        try:
            job = submit(data, spec, name, "", 0.0) if submit is not None else render(data, spec, name, "", 0.0)
        except ImageError:
            continue
        asked.append((rec, job))
    given: dict[str, tuple[ImageRecord, str]] = {}
    small: list[str] = []
    for rec, job in asked:
        try:
            rendered = job.result() if isinstance(job, Future) else job
        except ImageError as exc:
            log.warning("cannot compute window hashes of %s: %s", rec.path, exc.reason)
            continue
        if rendered is not None and rendered.crops:
            given[rec.name] = (rec, rendered.crops)
        elif rendered is not None:
            small.append(rec.name)
    with catalog.transaction():
        changed = []
        for name, current in catalog.images_named(list(given)).items():
            rec, windows = given[name]
            if current.present and (current.path, current.sha256, current.crops) == (rec.path, rec.sha256, rec.crops):
                current.crops = windows
                changed.append(current)  # else changed meanwhile: the next pass looks again
        catalog.put_images(changed)
    return len(changed), small


# Set once a scan has given EXIF to the images of kept pairs: every record this version writes
# keeps it, so a scan asks no more (a record without it, whose thumbnail could not be read
# then or that an older watcherd wrote since, is read from its thumbnail, as before).
EXIF_KEPT = "exif_kept"


def fill_exif(cfg: Config, catalog: Catalog) -> int:
    """Give every image of a kept pair lacking it the EXIF its thumbnail's chunks say; how many."""
    if catalog.meta(EXIF_KEPT):
        return 0
    places = Places(cfg)
    done = sum(_give_exif(places, catalog, names) for names in _batches(catalog.paired_lacking_exif()))
    _exif_kept(catalog, done)
    return done


def _give_exif(places: Places, catalog: Catalog, names: list[str]) -> int:
    """Give the images ``names`` lacking it the EXIF of their thumbnails' chunks; how many."""
    read: list[tuple[str, str, Exif]] = []
    for name, rec in catalog.images_named(names).items():
        data = _read(places.absolute(rec.path)) if rec.present else None
        text = chunks.read_text(data) if data is not None else {}
        if text and text.get("sha256", rec.sha256) == rec.sha256:
            read.append((name, rec.path, Exif.of(text)))  # that image's thumbnail, not another's
    with catalog.transaction():
        given = []
        now = catalog.images_named([name for name, _, _ in read])
        for name, rel, exif in read:
            current = now.get(name)
            if current is not None and current.present and current.path == rel and current.exif is None:
                current.exif = exif
                given.append(current)
        catalog.put_images(given)
    return len(given)


def _exif_kept(catalog: Catalog, done: int) -> None:
    with catalog.transaction():
        catalog.set_meta(EXIF_KEPT, True)
    if done:
        log.info("EXIF kept for %d images in near pairs catalogued before it was", done)


class Fills:
    """Both fills as the daemon's idle work: a batch a turn (``step``), while no file waits.

    A pass asks which images lack window hashes once, at its start (after each full scan,
    ``again``), and gives them a batch at a time; an image whose thumbnail is too small for
    any is noted (``_note_windowless``) and asked no more, one that cannot be read is asked
    again at the next pass. The EXIF fill follows once no
    image waits for its near pairs (they are what it fills), and, as in ``scan``, once per
    catalog.
    """

    def __init__(self, cfg: Config, catalog: Catalog, render: Renderer, size: int = STEP) -> None:
        self.catalog, self.render, self.size = catalog, render, size
        self.places, self.spec = Places(cfg), windows_spec(cfg)
        self.windows: list[str] | None = None  # left in this pass; None: the pass has not asked yet
        self.windows_given = 0
        self.passed_at = -1  # the catalog's count of changes when the last pass ended
        self.small: list[str] = []  # found too small for window hashes in this pass
        self.exif: list[str] | None = None  # left to fill; None: not asked yet
        self.exif_given = 0
        self.exif_kept = False

    def again(self) -> None:
        """Begin a new pass at the next step if the catalog changed since the last one ended (a
        full scan may have adopted thumbnails without window hashes; a quiet one asks nothing)."""
        if self.catalog.changes != self.passed_at:
            self.windows = None

    def give_up(self) -> None:
        """End this pass where it is (a bug met in it): the next one asks again."""
        self.windows, self.exif, self.exif_kept = [], None, True
        self.passed_at, self.small = -1, []

    @property
    def busy(self) -> bool:
        """Whether a batch is known to be left (or a pass to begin): the daemon then waits for no event."""
        return self.windows is None or bool(self.windows) or bool(self.exif)

    def step(self) -> int:
        """Fill one batch, if any is left; how many images were given something."""
        if self.windows is None:
            self._ask()
        if self.windows:
            return self._windows_step()
        if not self.exif_kept:
            return self._exif_step()
        return 0

    def windows_pass(self) -> int:
        """A whole pass of window hashes at once (``scan``'s); how many images were given them."""
        self._ask()
        given = 0
        while self.windows:
            given += self._windows_step()
        return given

    def _ask(self) -> None:
        """Begin a pass: which present images lack window hashes."""
        windows = self.windows = self.catalog.lacking_windows(PREFIX)
        if not windows:
            self.passed_at = self.catalog.changes
        elif len(windows) > self.size:  # a pass of more than a batch or two: say why the decoders are busy
            log.info("%d images lack window hashes; computing them from their thumbnails", len(windows))

    def _windows_step(self) -> int:
        assert self.windows
        names, self.windows = self.windows[: self.size], self.windows[self.size :]
        done, small = _give_windows(self.places, self.spec, self.catalog, self.render, names)
        self.windows_given += done
        self.small += small
        if not self.windows:
            _note_windowless(self.catalog, self.small)
            self.small = []
            self.passed_at = self.catalog.changes
            if self.windows_given:
                log.info("window hashes computed for %d images catalogued before they were kept", self.windows_given)
            self.windows_given = 0
        return done

    def _exif_step(self) -> int:
        catalog = self.catalog
        if self.exif is None:
            if catalog.meta(EXIF_KEPT):
                self.exif_kept = True
                return 0
            if catalog.waiting_for_pairs():
                return 0  # the images being paired are some of the ones to fill
            self.exif = catalog.paired_lacking_exif()
        if not self.exif:
            _exif_kept(catalog, self.exif_given)
            self.exif_kept = True
            return 0
        names, self.exif = self.exif[: self.size], self.exif[self.size :]
        done = _give_exif(self.places, catalog, names)
        self.exif_given += done
        return done
