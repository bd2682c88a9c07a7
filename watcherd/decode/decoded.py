"""A decoded picture and what was learnt while opening it: what ``imaging`` makes and ``chunks`` describes."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

__all__ = ["Decoded"]


@dataclass(frozen=True)
class Decoded:
    """A fully decoded image and what was learnt while opening it.

    ``size`` is the stored picture's size; ``image`` may be smaller when it was
    decoded in draft mode (``decode: fast``).
    """

    image: Image.Image
    format: str
    format_description: str
    size: tuple[int, int]
