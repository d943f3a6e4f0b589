"""Deleting a unit (a word, a tag such as 《速報》) from a text and inserting it where it usually stands: what
the shortcut countermeasures change in training texts and what their measurement changes in test texts (the
deletion flip rate; the shift set of Sagawa et al. 2020's worst group), so both edit texts the same way.

A unit is keyed by its NFKC text (the `shortcuts` analyzer's key: ｜ABC通信 is the unit |ABC通信, ｿｸﾎｳ is ソクホウ),
so it is looked for in a text's NFKC form and cut out of the original text: a raw substring match would miss
every full-width or half-width occurrence, and the cures would leave the training texts untouched."""

from __future__ import annotations

import random
from collections.abc import Sequence

from .japanese import normalised_with_offsets

START, END = "start", "end"


def occurrences(text: str, unit: str) -> list[tuple[int, int]]:
    """Spans [start, end) of `text` whose NFKC form is `unit`, left to right, not overlapping."""
    if not unit:
        return []
    norm, origin = normalised_with_offsets(text)
    spans = []
    at = norm.find(unit)
    while at >= 0:
        spans.append((origin[at], origin[at + len(unit) - 1] + 1))
        at = norm.find(unit, at + len(unit))
    return spans


def holds_unit(text: str, unit: str) -> bool:
    return bool(occurrences(text, unit))


def delete_unit(text: str, unit: str, replacement: str = "") -> str:
    """Every occurrence removed (or replaced), as deleting a shortcut must remove all it signals."""
    pieces, last = [], 0
    for start, end in occurrences(text, unit):
        pieces += [text[last:start], replacement]
        last = end
    return "".join(pieces) + text[last:]


def usual_place(texts: Sequence[str], unit: str) -> str:
    """`start` when the unit mostly stands in the first half of the texts that hold it (a prefixed tag), else
    `end`: where an inserted copy looks like the ones the model learned from."""
    spans = [(text, occurrences(text, unit)) for text in texts]
    positions = [found[0][0] / max(len(text) - (found[0][1] - found[0][0]), 1) for text, found in spans if found]
    if not positions:
        return START
    return START if sorted(positions)[len(positions) // 2] < 0.5 else END


def insert_unit(text: str, unit: str, place: str) -> str:
    return unit + text if place == START else text + unit


def sample_indices(n: int, k: int, seed: int) -> list[int]:
    """k of range(n) (all when k >= n), seeded, in order."""
    return sorted(random.Random(seed).sample(range(n), min(k, n)))
