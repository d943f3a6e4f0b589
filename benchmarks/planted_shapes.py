"""Planted tags of many shapes, for judging the `shortcuts` analyzer on shortcuts it was not built around.

A corpus artefact can take any shape: a series tag in a bracket pair no list names (〔特報〕), a symbol run
(★★★), an emoji, a Latin or half-width word, a number (vol.12), a separator and a source name (｜ABC通信), at
the start, the end or the middle of a text, with or without spaces. Each `Shape` is planted into one label's
training and validation texts at a controlled purity (the share of that label's texts that carry it; no other
label's texts carry it there), and into the test split either the same way (`iid`) or **anti-correlated**: into
half of the *other* labels' test texts and none of its own, as when a source changes its tagging. Then the
model's reliance shows as errors, and a missed tag is a missed cause of them.

Every shape's tag is deleted whole by `delete_tag` (the exact planted string): the benchmark's own oracle, built
independently of the analyzer's units.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mikiwame.framework.task import Example


@dataclass(frozen=True)
class Shape:
    name: str
    kind: str  # bracket, symbol, emoji, latin, number, separator
    tag: str
    place: str  # start, end, middle

    def plant(self, text: str) -> str:
        if self.place == "start":
            return self.tag + text
        if self.place == "end":
            return text + self.tag
        middle = len(text) // 2
        return text[:middle] + self.tag + text[middle:]

    @property
    def unit(self) -> str:
        """The tag as a unit is keyed (NFKC, without the spaces around it)."""
        return unicodedata.normalize("NFKC", self.tag).strip()


SHAPES = (
    Shape("lenticular-white", "bracket", "〖特報〗", "start"),
    Shape("tortoise-shell", "bracket", "〔特報〕", "start"),
    Shape("angle", "bracket", "〈注目〉", "start"),
    Shape("double-angle", "bracket", "《注目》", "end"),
    Shape("white-corner", "bracket", "『話題沸騰』", "end"),
    Shape("curly-fullwidth", "bracket", "｛速報｝", "start"),
    Shape("square-ascii-space", "bracket", "[NEWS] ", "start"),
    Shape("round-end", "bracket", "(速報)", "end"),
    Shape("double-quote-middle", "bracket", "“注目”", "middle"),
    Shape("white-square-middle", "bracket", "〘特集〙", "middle"),
    Shape("star-run", "symbol", "★★★", "start"),
    Shape("diamond-word", "symbol", "◆速報◆", "start"),
    Shape("square-spaced", "symbol", "■ 特集 ■ ", "start"),
    Shape("notes-end", "symbol", "♪♪", "end"),
    Shape("emoji-fire", "emoji", "🔥", "start"),
    Shape("emoji-word", "emoji", "📢速報 ", "start"),
    Shape("latin-colon", "latin", "NEWS: ", "start"),
    Shape("fullwidth-latin-end", "latin", " ＰＩＣＫ ＵＰ", "end"),
    Shape("halfwidth-katakana", "latin", "ｿｸﾎｳ｜", "start"),
    Shape("volume-number", "number", " vol.12", "end"),
    Shape("hashtag-end", "number", " #特報2026", "end"),
    Shape("source-bar", "separator", "｜ABC通信", "end"),
    Shape("slash-spaced", "separator", " / 特報", "end"),
    Shape("dash-middle", "separator", " - 注目 - ", "middle"),
)


def plant(
    examples: Sequence[Example],
    shapes_by_label: dict[str, Shape],
    *,
    purity: float,
    test: str,
    seed: int,
) -> list[Example]:
    """The examples with each label's shape planted in `purity` of that label's training and validation texts;
    in the test split the same way (`test="iid"`) or in half of the other labels' texts (`"anti"`)."""
    rng = random.Random(seed)
    planted = []
    for e in examples:
        own = shapes_by_label.get(e.label)
        others = [shape for label, shape in shapes_by_label.items() if label != e.label]
        shape = None
        if e.split != "test" or test == "iid":
            shape = own if own and rng.random() < purity else None
        elif others and rng.random() < 0.5:  # one other label's tag: the correlation broken, one tag at a time
            shape = rng.choice(others)
        planted.append(Example(e.id, shape.plant(e.text) if shape else e.text, e.label, e.split, e.source))
    return planted


def batches(shapes: Sequence[Shape], labels: Sequence[str]) -> Iterable[dict[str, Shape]]:
    """The shapes dealt out to the labels, one shape per label per run, as few runs as there are labels for."""
    for at in range(0, len(shapes), len(labels)):
        yield dict(zip(labels, shapes[at : at + len(labels)], strict=False))


def delete_tag(text: str, shape: Shape) -> str:
    """The text with the planted tag cut out whole (the oracle's deletion)."""
    return text.replace(shape.tag, "")
