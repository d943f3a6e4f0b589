"""Deleting a unit (a word, a tag such as 《速報》) from a text and inserting it where it usually stands: what
the shortcut countermeasures change in training texts and what their measurement changes in test texts (the
deletion flip rate; the shift set of Sagawa et al. 2020's worst group), so both edit texts the same way."""

from __future__ import annotations

import random
from collections.abc import Sequence

START, END = "start", "end"


def delete_unit(text: str, unit: str, replacement: str = "") -> str:
    """Every occurrence removed (or replaced), as deleting a shortcut must remove all it signals."""
    return text.replace(unit, replacement)


def usual_place(texts: Sequence[str], unit: str) -> str:
    """`start` when the unit mostly stands in the first half of the texts that hold it (a prefixed tag), else
    `end`: where an inserted copy looks like the ones the model learned from."""
    positions = [text.index(unit) / max(len(text) - len(unit), 1) for text in texts if unit in text]
    if not positions:
        return START
    return START if sorted(positions)[len(positions) // 2] < 0.5 else END


def insert_unit(text: str, unit: str, place: str) -> str:
    return unit + text if place == START else text + unit


def sample_indices(n: int, k: int, seed: int) -> list[int]:
    """k of range(n) (all when k >= n), seeded, in order."""
    return sorted(random.Random(seed).sample(range(n), min(k, n)))
