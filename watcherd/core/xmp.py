"""XMP documents (pure): keywords read out of a packet, and the sidecar watcherd writes.

Every XMP document here is other people's bytes (a photo's packet, a sidecar dropped
beside it, a sidecar digiKam edited since), so it is read with ``defusedxml`` and held to
bounds: at most MAX_DOCUMENT bytes, no document type declaration at all (where entity
bombs and external entities live: XMP has no use for one), at most MAX_DEPTH levels of
elements. Anything else is ``Refused``, with a reason fit for one log line.

The sidecar is an XMP document with one ``rdf:Description`` holding:

- ``dc:subject`` (a Bag), ``digiKam:TagsList`` (a Seq) and ``lr:hierarchicalSubject`` (a
  Bag): the image's keyword lists (``keywords.keyword_lists``);
- in watcherd's namespace (``WATCHERD``, prefix ``watcherd``): ``name``, ``hash`` and
  ``sha256`` of the image, ``keywords`` (the tags that came from the photo's own
  keywords), and ``wroteSubject``, ``wroteTagsList``, ``wroteHierarchicalSubject``: the
  entries of each list that watcherd put there.

Written again over an existing document (``sidecar``), everything in it is kept except
watcherd's own entries: an entry of the three lists that watcherd did not write (a
keyword added in digiKam, or one that arrived with the photo) stays, watcherd's entries
are replaced by the current ones, and every other property, namespace and description is
carried over. The XML is made by ElementTree with registered namespace prefixes, never
by string templates.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

import defusedxml
import defusedxml.ElementTree as SafeET

from watcherd import __version__
from watcherd.core.keywords import KeywordLists

X = "adobe:ns:meta/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
DIGIKAM = "http://www.digikam.org/ns/1.0/"
LR = "http://ns.adobe.com/lightroom/1.0/"
# watcherd's own properties. ``.invalid`` is reserved (RFC 2606): the name is only a name.
WATCHERD = "http://ns.watcherd.invalid/1.0/"

# Bounds on other people's XMP: a packet or sidecar larger than this is not read (a 1 MB
# darktable history fits), nor one nested deeper than MAX_DEPTH (serializing it again
# would recurse that deep).
MAX_DOCUMENT = 4 << 20
MAX_DEPTH = 64

_PREFIXES = {"x": X, "rdf": RDF, "dc": DC, "digiKam": DIGIKAM, "lr": LR, "watcherd": WATCHERD}
_known: dict[str, str] = {}  # uri -> prefix, every one registered with ElementTree here


def _register(prefix: str, uri: str) -> None:
    """Register ``prefix`` for ``uri`` unless either is registered already (ours win)."""
    if uri in _known or prefix in _known.values() or not prefix or prefix.startswith("ns"):
        return
    try:
        ET.register_namespace(prefix, uri)
    except ValueError:
        return  # a prefix ElementTree reserves: it makes up one itself
    _known[uri] = prefix


for _prefix, _uri in _PREFIXES.items():
    _register(_prefix, _uri)


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


# The three keyword lists: (namespace, property, container), with the watcherd property
# that remembers what watcherd wrote there.
LISTS = (
    (DC, "subject", "Bag", "wroteSubject"),
    (DIGIKAM, "TagsList", "Seq", "wroteTagsList"),
    (LR, "hierarchicalSubject", "Bag", "wroteHierarchicalSubject"),
)


class Refused(Exception):
    """An XMP document watcherd will not read; ``reason`` says why, for one log line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse(data: bytes) -> tuple[Element, list[tuple[str, str]]]:
    """The root element of an XMP document and the namespace prefixes it declares, or Refused."""
    if len(data) > MAX_DOCUMENT:
        raise Refused(f"{len(data)} bytes, over the {MAX_DOCUMENT} byte limit")
    data = data.rstrip(b"\x00")  # some writers end a packet with NULs
    prefixes: list[tuple[str, str]] = []
    root: Element | None = None
    depth = 0
    try:
        for event, item in SafeET.iterparse(io.BytesIO(data), ("start", "end", "start-ns"), forbid_dtd=True):
            if event == "start-ns":
                prefixes.append(item)
            elif event == "start":
                depth += 1
                if depth > MAX_DEPTH:
                    raise Refused(f"nested deeper than {MAX_DEPTH} elements")
                if root is None:
                    root = item
            else:
                depth -= 1
    except defusedxml.DTDForbidden:
        raise Refused(
            "it declares a document type (DTD), where entity bombs and external entities live; XMP needs none"
        ) from None
    except (defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden) as exc:
        raise Refused(f"it declares entities ({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise Refused(f"not well-formed XML ({exc})") from None
    if root is None:
        raise Refused("empty")
    return root, prefixes


def _rdf(root: Element) -> Element | None:
    if root.tag == _q(RDF, "RDF"):
        return root
    return root.find(f".//{_q(RDF, 'RDF')}")


def _items(prop: Element) -> list[str]:
    """The text of each ``rdf:li`` of an array property (or its own text, for a lone value)."""
    found = [(li.text or "").strip() for li in prop.iter(_q(RDF, "li"))]
    if not found and prop.text and prop.text.strip() and not len(prop):
        found = [prop.text.strip()]
    return [f for f in found if f]


def _property(descriptions: list[Element], ns: str, local: str) -> list[str]:
    """Every entry of property ``ns:local`` in the descriptions (as an element or an attribute)."""
    out: list[str] = []
    for desc in descriptions:
        attr = desc.get(_q(ns, local))
        if attr:
            out.append(attr.strip())
        for prop in desc.findall(_q(ns, local)):
            out.extend(_items(prop))
    return out


def keywords_in(data: bytes) -> list[str]:
    """The keywords an XMP packet or sidecar carries: ``dc:subject``, then ``digiKam:TagsList``,
    then ``lr:hierarchicalSubject`` entries, as written (``Refused`` if it is not read)."""
    root, _ = parse(data)
    rdf = _rdf(root)
    if rdf is None:
        return []
    descriptions = rdf.findall(_q(RDF, "Description"))
    return [k for ns, local, _, _ in LISTS for k in _property(descriptions, ns, local)]


@dataclass(frozen=True)
class SidecarFacts:
    """What watcherd writes into an image's sidecar."""

    name: str
    hash: str
    sha256: str | None
    lists: KeywordLists
    keywords: tuple[str, ...] = ()  # the tags that came from the photo's own keywords


def _new_document() -> Element:
    meta = Element(_q(X, "xmpmeta"), {_q(X, "xmptk"): f"watcherd {__version__}"})
    rdf = SubElement(meta, _q(RDF, "RDF"))
    SubElement(rdf, _q(RDF, "Description"), {_q(RDF, "about"): ""})
    return meta


def _array(parent: Element, ns: str, local: str, container: str, items: Iterable[str]) -> Element:
    prop = SubElement(parent, _q(ns, local))
    _fill(prop, container, items)
    return prop


def _fill(prop: Element, container: str, items: Iterable[str]) -> None:
    for child in list(prop):
        prop.remove(child)
    prop.text = None
    holder = SubElement(prop, _q(RDF, container))
    for item in items:
        SubElement(holder, _q(RDF, "li")).text = item


def _levels(entries: Iterable[str], separator: str) -> set[str]:
    return {level for entry in entries if separator in entry for level in entry.split(separator)}


def sidecar(existing: bytes | None, facts: SidecarFacts) -> bytes:
    """The sidecar for ``facts``: a new document, or ``existing`` with watcherd's part brought up
    to date and everything else kept (``Refused`` when ``existing`` cannot be read safely)."""
    if existing is None or not existing.strip():
        root = _new_document()
    else:
        root, prefixes = parse(existing)
        for prefix, uri in prefixes:
            _register(prefix, uri)
    rdf = _rdf(root)
    if rdf is None:
        raise Refused("no rdf:RDF element: not an XMP document")
    descriptions = rdf.findall(_q(RDF, "Description"))
    if not descriptions:
        descriptions = [SubElement(rdf, _q(RDF, "Description"), {_q(RDF, "about"): ""})]
    first = descriptions[0]
    wrote = {mark: _property(descriptions, WATCHERD, mark) for _, _, _, mark in LISTS}
    for desc in descriptions:  # watcherd's part is written afresh below
        ours = [k for k in desc.attrib if k.startswith(f"{{{WATCHERD}}}")]
        for key in ours:
            del desc.attrib[key]
        children = [c for c in desc if c.tag.startswith(f"{{{WATCHERD}}}")]
        for child in children:
            desc.remove(child)
        if (ours or children) and desc is not first and not len(desc) and set(desc.attrib) <= {_q(RDF, "about")}:
            rdf.remove(desc)  # a description that held only watcherd's part (another tool split it off)
    descriptions = rdf.findall(_q(RDF, "Description"))
    lists = facts.lists
    ours_by_list = {"subject": lists.subject, "TagsList": lists.tags_list, "hierarchicalSubject": lists.hierarchical}
    written: dict[str, list[str]] = {}
    for ns, local, container, mark in LISTS:
        current = _property(descriptions, ns, local)
        foreign = [k for k in current if k not in wrote[mark]]
        ours = list(ours_by_list[local])
        if local != "subject":  # a lone tag already inside a hierarchy someone wrote is not repeated
            separator = "/" if local == "TagsList" else "|"
            inside = _levels(foreign, separator)
            ours = [k for k in ours if separator in k or k not in inside]
        entries = [*ours, *(k for k in dict.fromkeys(foreign) if k not in ours)]
        written[mark] = [k for k in ours if k not in foreign]
        placed = False
        for desc in descriptions:
            if desc.get(_q(ns, local)) is not None:
                del desc.attrib[_q(ns, local)]
            for prop in desc.findall(_q(ns, local)):
                if entries and not placed:
                    _fill(prop, container, entries)  # where it was, so the document keeps its shape
                    placed = True
                else:
                    desc.remove(prop)
        if entries and not placed:
            _array(first, ns, local, container, entries)
    SubElement(first, _q(WATCHERD, "name")).text = facts.name
    SubElement(first, _q(WATCHERD, "hash")).text = facts.hash
    if facts.sha256:
        SubElement(first, _q(WATCHERD, "sha256")).text = facts.sha256
    if facts.keywords:
        _array(first, WATCHERD, "keywords", "Bag", facts.keywords)
    for _, _, _, mark in LISTS:
        if written[mark]:
            _array(first, WATCHERD, mark, "Bag", written[mark])
    ET.indent(root, space=" ")
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"
