"""Keywords both ways and the XMP documents (pure): what a photo's keywords give, what a sidecar says,
what is kept of someone else's sidecar, and what is refused."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from tests.helpers import ENTITY_BOMB, EXTERNAL_ENTITY, encode, scene, with_iptc_keywords, xmp_packet
from watcherd.core import xmp
from watcherd.core.keywords import KeywordLists, iptc_keywords, keyword_lists, read_keywords, xattr_value
from watcherd.decode import imaging
from watcherd.decode.rendered import RenderSpec

DC_SUBJECT = f"{{{xmp.DC}}}subject"


def test_a_folder_path_is_a_hierarchy_and_every_level_a_flat_keyword() -> None:
    lists = keyword_lists(["cats", "orange", "640x480", "cute"], "640x480", [("cats", "orange")])
    assert lists == KeywordLists(
        subject=("cats", "orange", "cute"),  # never the size tag
        tags_list=("cats/orange", "cute"),
        hierarchical=("cats|orange", "cute"),
    )


def test_a_level_no_longer_tagged_drops_out_of_its_hierarchy() -> None:
    # untagged 'orange' while the thumbnail still sits in cats/orange/; 2023/ gives no tag
    lists = keyword_lists(["cats", "10x10", "dogs"], "10x10", [("cats", "2023", "orange"), ("dogs",)])
    assert lists.hierarchical == ("cats", "dogs") and lists.tags_list == ("cats", "dogs")
    # renamed (retag orange ginger): the new name stands alone, the hierarchy keeps what is left
    lists = keyword_lists(["cats", "ginger"], "1x1", [("cats", "orange")])
    assert lists.hierarchical == ("cats", "ginger")


def test_the_photos_own_hierarchies_are_written_back_as_hierarchies() -> None:
    lists = keyword_lists(["cats", "Places", "Paris", "1x1"], "1x1", [("cats",)], ["Places|Paris"])
    assert lists.hierarchical == ("cats", "Places|Paris") and lists.tags_list == ("cats", "Places/Paris")
    assert lists.subject == ("cats", "Places", "Paris")


def test_keywords_become_tags_level_by_level() -> None:
    tags, paths = read_keywords(
        [
            "Cats",
            "Places|Paris",
            "Places/Paris",
            " sunset ",
            "Cafe\u0301",
            "darktable|format|jpg",
            "640x480",
            "",
            "a\nb",
        ]
    )
    assert tags == ["Cats", "Places", "Paris", "sunset", "Café", "ab"]  # NFC, trimmed, no size tag, no darktable
    assert paths == ["Places|Paris"]


def test_a_photo_brings_at_most_so_many_keywords() -> None:
    tags, _ = read_keywords([f"k{i}" for i in range(2000)])
    assert len(tags) == 500


def test_iptc_keywords_are_utf8_when_said_or_valid_else_latin1() -> None:
    assert iptc_keywords([b"b\xc3\xa9ta"], b"\x1b%G") == ["béta"]
    assert iptc_keywords([b"b\xc3\xa9ta", b"b\xe9ta"], None) == ["béta", "béta"]


def test_xattr_value_is_comma_separated_without_the_size_tag() -> None:
    assert xattr_value(["cats", "64x48", "orange"], "64x48") == "cats,orange"


def facts(*tags: str, folders: tuple[tuple[str, ...], ...] = ()) -> xmp.SidecarFacts:
    return xmp.SidecarFacts("64x48_ab_.png", "ab", "f" * 64, keyword_lists(list(tags), "64x48", folders))


def lists_in(document: bytes) -> dict[str, list[str]]:
    root = ET.fromstring(document)
    out: dict[str, list[str]] = {}
    for ns, local, _, _ in xmp.LISTS:
        for prop in root.iter(f"{{{ns}}}{local}"):
            out[local] = [li.text or "" for li in prop.iter(f"{{{xmp.RDF}}}li")]
    return out


def test_a_new_sidecar_carries_the_three_lists_and_watcherds_facts() -> None:
    document = xmp.sidecar(None, facts("cats", "orange", "64x48", folders=(("cats", "orange"),)))
    assert lists_in(document) == {
        "subject": ["cats", "orange"],
        "TagsList": ["cats/orange"],
        "hierarchicalSubject": ["cats|orange"],
    }
    root = ET.fromstring(document)
    assert root.findtext(f".//{{{xmp.WATCHERD}}}name") == "64x48_ab_.png"
    assert root.findtext(f".//{{{xmp.WATCHERD}}}sha256") == "f" * 64
    assert b"xmlns:dc=" in document and b"xmlns:watcherd=" in document  # registered prefixes, not ns0
    assert xmp.keywords_in(document) == ["cats", "orange", "cats/orange", "cats|orange"]


def test_keywords_others_wrote_are_kept_and_watcherds_old_ones_replaced() -> None:
    ours = xmp.sidecar(None, facts("cats", "orange", folders=(("cats", "orange"),)))
    # digiKam adds a keyword, a rating and a hierarchy of its own in a description of its own
    root = ET.fromstring(ours)
    bag = next(root.iter(DC_SUBJECT))[0]
    ET.SubElement(bag, f"{{{xmp.RDF}}}li").text = "sunset"
    rdf = next(root.iter(f"{{{xmp.RDF}}}RDF"))
    other = ET.SubElement(rdf, f"{{{xmp.RDF}}}Description", {"{http://ns.adobe.com/xap/1.0/}Rating": "4"})
    hs = ET.SubElement(ET.SubElement(other, f"{{{xmp.LR}}}hierarchicalSubject"), f"{{{xmp.RDF}}}Bag")
    ET.SubElement(hs, f"{{{xmp.RDF}}}li").text = "Places|Paris"
    edited = ET.tostring(root, encoding="utf-8")

    # watcherd renames orange to ginger; Paris became a tag of its own meanwhile
    again = xmp.sidecar(edited, facts("cats", "ginger", "Paris", folders=(("cats", "orange"),)))
    assert lists_in(again) == {
        "subject": ["cats", "ginger", "Paris", "sunset"],
        "TagsList": ["cats", "ginger", "Paris"],
        "hierarchicalSubject": ["cats", "ginger", "Places|Paris"],  # Paris is inside a hierarchy already
    }
    assert b'Rating="4"' in again
    # and watcherd's part is not doubled: written once more, nothing changes
    assert xmp.sidecar(again, facts("cats", "ginger", "Paris", folders=(("cats", "orange"),))) == again
    # untagged everywhere: only what watcherd wrote goes
    gone = xmp.sidecar(again, facts("ginger"))
    assert lists_in(gone)["subject"] == ["ginger", "sunset"]


@pytest.mark.parametrize(
    ("doctype", "body", "why"),
    [
        (ENTITY_BOMB, "<dc:title>&j;</dc:title>", "document type"),
        (EXTERNAL_ENTITY, "<dc:title>&xxe;</dc:title>", "document type"),
    ],
    ids=["entity bomb", "external entity"],
)
def test_entities_are_refused_never_expanded(doctype: str, body: str, why: str) -> None:
    packet = xmp_packet(("cats",), doctype=doctype, body=body)
    with pytest.raises(xmp.Refused, match=why):
        xmp.keywords_in(packet)
    with pytest.raises(xmp.Refused, match=why):  # nor merged into: that sidecar is left as it is
        xmp.sidecar(packet, facts("cats"))


def test_oversized_deep_and_broken_documents_are_refused() -> None:
    with pytest.raises(xmp.Refused, match="byte limit"):
        xmp.keywords_in(xmp_packet(("x" * (xmp.MAX_DOCUMENT + 1),)))
    deep = "<a>" * 100 + "</a>" * 100
    with pytest.raises(xmp.Refused, match="deeper"):
        xmp.keywords_in(deep.encode())
    with pytest.raises(xmp.Refused, match="well-formed"):
        xmp.keywords_in(b"<x:xmpmeta")
    with pytest.raises(xmp.Refused, match="not an XMP document"):
        xmp.sidecar(b"<notxmp/>", facts("cats"))


def test_a_photos_xmp_and_iptc_keywords_are_read_in_the_render_job() -> None:
    packet = xmp_packet(("gamma",), ("Animals/Cats",), ("Places|Paris",))
    data = with_iptc_keywords(encode(scene(seed=2), xmp=packet), ["alpha", "ünï"])
    sidecar = xmp_packet(("from-the-sidecar",))
    out = imaging.render(data, RenderSpec(("JPEG",), 10**8, "#ffffff", "whash", 8, 64), "a.jpg", "0", 0.0, sidecar)
    assert out.keywords == ("gamma", "Animals", "Cats", "Places", "Paris", "alpha", "ünï", "from-the-sidecar")
    assert out.keyword_paths == ("Animals|Cats", "Places|Paris") and out.refused == ""


def test_a_hostile_packet_costs_its_keywords_only() -> None:
    packet = xmp_packet(("never",), doctype=ENTITY_BOMB, body="<dc:title>&j;</dc:title>")
    data = with_iptc_keywords(encode(scene(seed=2), xmp=packet), ["alpha"])
    keywords, _, refused = imaging.keywords_of(Image.open(io.BytesIO(data)))
    assert keywords == ("alpha",) and "the photo's XMP" in refused and "document type" in refused
    spec = RenderSpec(("JPEG",), 10**8, "#ffffff", "whash", 8, 64)
    assert imaging.render(data, spec, "a.jpg", "0", 0.0).keywords == ("alpha",)  # the image still renders
    assert (
        imaging.render(
            data, RenderSpec(("JPEG",), 10**8, "#ffffff", "whash", 8, 64, keywords=False), "a.jpg", "0", 0.0
        ).keywords
        == ()
    )
