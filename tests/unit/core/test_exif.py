"""What a record keeps of its picture's EXIF gives the keeper rule the very facts its thumbnail's
chunks give (pure: no files)."""

from __future__ import annotations

import json
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcherd.core.exif import Exif
from watcherd.core.keeper import exif_date, facts_from, facts_of, shot, shot_of
from watcherd.core.records import ImageRecord, State

# Values as EXIF gives them, and the odd ones a rule must survive: dates well and badly
# formed, sizes as digits and not, NUL padding, makes the model repeats.
VALUES = st.one_of(
    st.sampled_from(
        [
            "2019:06:02 10:11:12",
            "2019:06:02 10:11:12\x00",
            "0000:00:00 00:00:00",
            " 2021:01:01 00:00:00 ",
            "Canon",
            "Canon EOS 80D",
            "NIKON CORPORATION",
            "NIKON D750",
            "4000",
            "0",
            "x12",
            "123",
            "",
        ]
    ),
    st.text(max_size=12),
)
SIZES = st.one_of(st.integers(0, 5000).map(str), VALUES)
# Each field the rule reads, and some it does not, there or not (every mix of them is likely).
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        **{tag: SIZES for tag in ("ExifImageWidth", "ExifImageHeight", "PixelXDimension")},
        **{tag: VALUES for tag in ("Make", "Model", "DateTimeOriginal", "DateTimeDigitized", "DateTime")},
        **{tag: VALUES for tag in ("SubsecTimeOriginal", "Orientation", "Software", "XResolution", "GPSLatitude")},
    },
)
DIGITS = st.one_of(st.integers(0, 5000).map(str), st.sampled_from(["", "x"]))


# No clock in a test: no deadline, no check of how long examples take to make (a busy CI machine).
@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=FIELDS,
    width=DIGITS,
    height=DIGITS,
    stored=DIGITS,
    size=st.one_of(st.none(), st.tuples(st.integers(1, 99), st.integers(1, 99))),
    file_size=st.one_of(st.none(), st.integers(0, 10**6)),
    file_time=st.one_of(st.none(), st.just(datetime(2020, 1, 2, 3, 4, 5))),
)
def test_the_kept_exif_gives_the_facts_the_chunks_give(
    fields: dict[str, str],
    width: str,
    height: str,
    stored: str,
    size: tuple[int, int] | None,
    file_size: int | None,
    file_time: datetime | None,
) -> None:
    chunks = {"exif": json.dumps(fields), "width": width, "height": height, "file_size": stored}
    # The rule read from the whole EXIF, nothing left out, against what a record keeps of it.
    whole = Exif(len(fields), fields)
    kept = Exif.from_json(json.loads(json.dumps(Exif.of(chunks).to_json())))  # through the record's JSON
    assert kept is not None and kept.count == whole.count
    # Beside its EXIF a record keeps the size and file size the chunks said (else its own).
    kept_size = (int(width), int(height)) if width.isdigit() and height.isdigit() else size
    kept_file_size = int(stored) if stored.isdigit() else file_size
    facts = facts_of(whole, kept_size, kept_file_size, file_time)
    assert facts_of(kept, kept_size, kept_file_size, file_time) == facts
    assert facts_from(chunks, size, file_size, file_time) == facts
    assert shot_of(kept) == shot_of(whole) == shot(chunks)


def test_only_the_fields_the_rule_reads_are_kept_with_how_many_there_were() -> None:
    fields = {"Make": "Canon", "Model": "Canon EOS 80D", "Orientation": "1", "Software": "x", "DateTime": "2020"}
    exif = Exif.of({"exif": json.dumps(fields)})
    assert exif == Exif(5, {"Make": "Canon", "Model": "Canon EOS 80D", "DateTime": "2020"})
    assert Exif.of({}) == Exif(0, {}) and Exif.of({"exif": "not json"}) == Exif(0, {})


def test_what_is_not_a_kept_exif_reads_as_none() -> None:
    malformed: list[object] = [None, [], "x", {"count": "3", "fields": {}}, {"count": True, "fields": {}}]
    for data in [*malformed, {"count": -1, "fields": {}}, {"count": 1, "fields": []}]:
        assert Exif.from_json(data) is None
    assert Exif.from_json({"count": 2, "fields": {"Make": "A", "Other": "B", "Model": 3}}) == Exif(2, {"Make": "A"})


def test_a_record_keeps_its_exif_and_one_from_before_has_none() -> None:
    name = "64x48_00000000000000ff_.png"
    rec = ImageRecord(name, "00000000000000ff", 64, 48, f"thumbs/a/{name}", State.PRESENT, "", "")
    assert ImageRecord.from_json(rec.to_json()).exif is None and "exif" not in rec.to_json()
    rec.exif = Exif(3, {"Model": "X100"})
    again = ImageRecord.from_json(json.loads(json.dumps(rec.to_json())))
    assert again.exif == Exif(3, {"Model": "X100"}) and again.extra == {}


# Dates as EXIF writes them, then maybe one character changed (a field out of range, another
# separator, another digit), maybe padded or followed by more text.
@st.composite
def exif_texts(draw: st.DrawFn) -> str:
    when = draw(st.datetimes(min_value=datetime(1850, 1, 1), max_value=datetime(2100, 12, 31)))
    text = when.strftime("%Y:%m:%d %H:%M:%S")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from("0123456789:- T\uff12\x00")) + text[at + 1 :]
    return draw(st.sampled_from(["", " ", "  "])) + text + draw(st.sampled_from(["", "\x00", "  ", "+02:00", ".25"]))


@settings(max_examples=600, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(text=exif_texts())
def test_an_exif_date_reads_as_strptime_reads_it(text: str) -> None:
    try:
        expected: datetime | None = datetime.strptime(text.strip().strip("\x00").strip()[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        expected = None
    if expected is not None and expected.year < 1900:
        expected = None
    assert exif_date(text) == expected
