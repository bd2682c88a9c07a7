from pathlib import PurePosixPath

import pytest

from watcherd.core import naming
from watcherd.core.config import DEFAULT_IGNORE
from watcherd.core.filters import has_image_suffix, is_ignored
from watcherd.core.naming import (
    canonical_name,
    names_bytes,
    numbered,
    parse_canonical,
    shown,
    tags_for,
    variant_name,
)

pytestmark = pytest.mark.pure  # no file, no catalog: tests/unit/conftest.py holds them to it


def test_canonical_round_trip() -> None:
    name = canonical_name(640, 480, "07070703838387c7")
    assert name == "640x480_07070703838387c7_.png"
    parsed = parse_canonical(name)
    assert parsed is not None
    assert (parsed.width, parsed.height, parsed.hash) == (640, 480, "07070703838387c7")
    assert parsed.name == name
    assert parsed.size_tag == "640x480"


@pytest.mark.parametrize(
    "name",
    [
        "640x480_07070703838387c7_.jpg",  # an original, not a thumbnail
        "640x480_07070703838387c7.png",
        "640x480_07070703838387C7_.png",  # ImageHash writes lower case
        "0x480_07070703838387c7_.png",
        "640x480_07070703838387c7_~1a2b3c.png",  # a variant carries 12 hex digits
        "640x480_07070703838387c7_~1a2b3c4d5e6f~1.png",  # the first of the same bytes has no number
        "640x480_07070703838387c7_~1a2b3c4d5e6f~02.png",
        "640x480_07070703838387c7_~2.png",  # a number only after a variant
        "cat.png",
        "640x480__.png",
    ],
)
def test_not_canonical(name: str) -> None:
    assert parse_canonical(name) is None


def test_low_information_variant_round_trip() -> None:
    name = variant_name("64x64_0000000000000000_.png", "1a2b3c4d5e6f7788")
    assert name == "64x64_0000000000000000_~1a2b3c4d5e6f.png"
    parsed = parse_canonical(name)
    assert parsed is not None and parsed.variant == "1a2b3c4d5e6f" and parsed.name == name


def test_the_nth_newcomer_of_the_same_bytes_is_a_name_of_those_bytes() -> None:
    plain, sha = "64x64_0000000000000000_.png", "1a2b3c4d5e6f7788"
    parsed = parse_canonical("64x64_0000000000000000_~1a2b3c4d5e6f~3.png")
    assert parsed is not None and (parsed.variant, parsed.n, parsed.plain) == ("1a2b3c4d5e6f", 3, plain)
    assert parsed.name == "64x64_0000000000000000_~1a2b3c4d5e6f~3.png"
    assert names_bytes(plain, plain, sha)
    assert names_bytes(parsed.name, plain, sha)
    assert names_bytes(variant_name(plain, sha), plain, sha)
    assert not names_bytes(parsed.name, plain, "ffff" + sha)  # other bytes
    assert not names_bytes(parsed.name, "64x64_0000000000000001_.png", sha)  # another image's variant


def test_numbered_goes_before_suffix() -> None:
    assert numbered("10x20_abcd_.jpg", 2) == "10x20_abcd_~2.jpg"


def test_tags_skip_numeric_folders_and_keep_order() -> None:
    assert tags_for(PurePosixPath("2024/cats/07/orange")) == ["cats", "orange"]
    assert tags_for(PurePosixPath(".")) == []


def test_tags_are_nfc() -> None:
    nfd = "cafe\u0301"
    assert tags_for(PurePosixPath(nfd)) == ["caf\u00e9"]


@pytest.mark.parametrize(
    "parts",
    [
        ("a.part",),
        ("big.jpg.crdownload",),
        ("x.tmp",),
        ("~$doc.jpg",),
        (".goutputstream-ABC",),
        ("Thumbs.db",),
        ("THUMBS.DB",),
        ("desktop.ini",),
        (".DS_Store",),
        ("._cat.jpg",),
        (".hidden.jpg",),
        (".Trash-1000", "cat.jpg"),
        ("photos", "@eaDir", "cat.jpg", "SYNOFILE_THUMB_XL.jpg"),
        ("$RECYCLE.BIN", "S-1-5-21", "cat.jpg"),
        (".watcherd-tmp-1-abc.png",),
    ],
)
def test_ignored(parts: tuple[str, ...]) -> None:
    assert is_ignored(parts, DEFAULT_IGNORE)


def test_not_ignored() -> None:
    assert not is_ignored(("cats", "cat.jpg"), DEFAULT_IGNORE)


def test_temporaries_ignored_even_with_empty_list() -> None:
    assert is_ignored((".watcherd-tmp-1-abc.png",), ())


def test_image_suffixes() -> None:
    assert has_image_suffix("a.JPG")
    assert has_image_suffix("a.webp")
    assert not has_image_suffix("notes.txt")
    assert not has_image_suffix("a.eps")
    assert has_image_suffix("IMG_0001.HEIC") and has_image_suffix("a.heif") and has_image_suffix("a.avif")
    assert not has_image_suffix("a.jxl")  # an image watcherd cannot decode: reported, not ingested


def test_shown_escapes_control_characters_and_bad_bytes() -> None:
    assert shown("a\nb") == "a\\nb"
    assert shown("a\x1b[31mb") == "a\\x1b[31mb"
    assert shown("caf\udce9.jpg") == "caf\\xe9.jpg"
    assert shown("plain é.jpg") == "plain é.jpg"


def test_a_number_is_written_in_ascii_digits() -> None:
    # str.isdigit says yes to the last three; int refuses the first two of them.
    assert [naming.number(t) for t in ("0", "0042", "123")] == [0, 42, 123]
    assert [naming.number(t) for t in ("", "-1", " 1", "1.5", "²", "①", "١٢")] == [None] * 7
