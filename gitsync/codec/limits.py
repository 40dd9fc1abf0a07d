"""How much a decoder may build from one body: elements, decoded text, nesting.

A body comes from a peer that has not authenticated yet, so what decoding it may cost is bounded
by the body limit, not by the body: a WBXML string-table entry referenced by STR_T a million times
would otherwise decode to a million copies, and 12 MB of empty elements to twelve million objects.
The budget is charged while decoding, so an over-budget body stops within a few milliseconds of
crossing the line, having built no more than the budget allows.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitsync.errors import CodecError

__all__ = ["PIECE_COST", "Budget", "DecodeLimits"]

#: what one text piece costs on top of its length (a str object and a list slot), so that many
#: tiny pieces (one WBXML ENTITY each) are charged what they take
PIECE_COST = 64


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Caps for decoding one body, derived from the body limit."""

    max_elements: int
    max_text: int  # decoded characters/bytes, string-table references and piece overhead included
    max_depth: int = 64

    @classmethod
    def for_body_limit(cls, max_body: int) -> DecodeLimits:
        """Proportional to the body limit: a legitimate message needs ~10 elements per item of
        ~100+ bytes, and decodes to no more text than it carries (the string table aside)."""
        return cls(max_elements=max(4096, max_body // 96), max_text=max(1 << 20, 2 * max_body))


class Budget:
    """The part of a :class:`DecodeLimits` still unspent while one body is decoded."""

    __slots__ = ("elements", "limits", "text")

    def __init__(self, limits: DecodeLimits) -> None:
        self.limits = limits
        self.elements = limits.max_elements
        self.text = limits.max_text

    def element(self) -> None:
        """Charge one element."""
        self.elements -= 1
        if self.elements < 0:
            raise CodecError(
                f"message has more than {self.limits.max_elements} elements", status_hint=413
            )

    def charge_text(self, size: int) -> None:
        """Charge one text piece of ``size`` characters or bytes."""
        self.text -= size + PIECE_COST
        if self.text < 0:
            raise CodecError(
                f"message decodes to more than {self.limits.max_text} bytes of text", status_hint=413
            )
