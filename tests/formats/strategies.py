"""Hypothesis strategies shared by the format tests."""

from __future__ import annotations

import re

from hypothesis import strategies as st

_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: Characters that stress escaping and line-ending handling.
TRICKY = st.sampled_from(
    ["<", ">", "&", "]]>", "\r\n", "\r", "\n", "\t", " ", '"', "'", "&#13;", "ü", "é", "€", "😀"]
)

#: Any character XML 1.0 can carry.
xml_char = st.characters(exclude_categories=["Cs"]).filter(lambda c: not _XML_ILLEGAL.match(c))

#: Text XML 1.0 can carry, biased towards escaping trouble.
xml_text = st.lists(st.one_of(TRICKY, xml_char), max_size=40).map("".join)

#: Any text that encodes to UTF-8 (no lone surrogates).
unicode_text = st.lists(st.one_of(TRICKY, st.characters(exclude_categories=["Cs"])), max_size=40).map("".join)
