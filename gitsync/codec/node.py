"""A neutral element tree shared by the XML and WBXML codecs.

``Node`` is what both byte encodings decode to and encode from, so the mapping between
SyncML elements and :mod:`gitsync.protocol.messages` is written once
(:mod:`gitsync.codec.syncml`). Tags are local names (no namespace); ``ns`` records the
namespace of the element when it is not SyncML itself: ``"syncml:metinf"`` for MetInf
elements and ``"syncml:devinf"`` for DevInf elements. ``text`` is ``str`` for character
data and ``bytes`` for WBXML OPAQUE data (which may be any bytes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["DEVINF_NS", "METINF_NS", "Node"]

METINF_NS = "syncml:metinf"
DEVINF_NS = "syncml:devinf"


@dataclass(slots=True)
class Node:
    """One element: tag, namespace hint, text or opaque bytes, children in order."""

    tag: str
    children: list[Node] = field(default_factory=list)
    text: str | bytes | None = None
    ns: str | None = None

    def find(self, tag: str) -> Node | None:
        """Return the first child with ``tag``, or ``None``."""
        for child in self.children:
            if child.tag == tag:
                return child
        return None

    def findall(self, tag: str) -> Iterator[Node]:
        """Yield every child with ``tag``."""
        return (child for child in self.children if child.tag == tag)

    def findtext(self, tag: str) -> str | None:
        """Return the text of the first child with ``tag`` (bytes decoded as UTF-8)."""
        child = self.find(tag)
        if child is None:
            return None
        return child.text_str()

    def text_str(self) -> str:
        """This node's text as ``str`` (OPAQUE bytes decoded as UTF-8, errors replaced)."""
        if self.text is None:
            return ""
        if isinstance(self.text, bytes):
            return self.text.decode("utf-8", "replace")
        return self.text

    def add(self, tag: str, text: str | bytes | None = None, ns: str | None = None) -> Node:
        """Append a new child and return it."""
        child = Node(tag, text=text, ns=ns)
        self.children.append(child)
        return child
