"""The units a shortcut can be: what a model may lean on in a short text, with every occurrence's character span.

A corpus artefact rarely lines up with one MeCab word. livedoor puts series tags such as 【売れ筋チェック】 in its
titles, a feed may append ｜ABC通信 or ★速報★, and the word inside may occur elsewhere too, so its purity is low
while the whole tag is almost pure; deleting the word alone leaves the rest of the tag behind, still carrying the
shortcut. So the units are defined by the data, not by a list of tag shapes. A text's candidate units are
- its MeCab content words and merged noun spans (`framework.japanese.unit_spans`),
- **tags grown from the training data** (`grow_tags`): from every word or symbol that occurs in at least
  MIN_GROWTH_TEXTS training texts of one label, the maximal contiguous span that travels with it there: a
  neighbouring character joins while it sits beside at least TRAVELS_WITH of those occurrences, whatever its
  script or symbol class (brackets and quotes of every kind, ★◆■♪ runs, emoji, half- and full-width Latin and
  digits, separators such as ／｜-, spaces inside the tag),
- its bracketed segments, brackets included: any opening punctuation or quote (Unicode Ps, Pi) up to the next
  closing one (Pe, Pf); NFKC folds the full-width forms into the ASCII ones, so both are one unit,
- word n-grams of 2 and 3 adjacent MeCab words that start and end with a content word (so 猫、 or 独女が never
  compete with 猫 and 独女).
A unit is keyed by its NFKC text; deleting a unit deletes all its occurrences in a text.

Overlapping units that carry the same effect are folded (`fold_overlapping`) so that a report names 【X】 once,
not 【, 【X, X】 and X, and `unit_evidence` gives what marks a format artefact rather than topic: the same place in
most texts, a bracketed form, a large share of its label's training texts.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache
from typing import Any

from mikiwame.framework.japanese import Span, located_words, normalise, normalised_with_offsets, unit_spans

MAX_NGRAM = 3
MIN_PURITY = 0.8  # share of the training texts containing a unit that carry its label (the oracle's rule)
#: a neighbouring character joins a growing tag when it sits beside this share of the seed's occurrences
TRAVELS_WITH = 0.9
MIN_GROWTH_TEXTS = 5  # texts of one label a word or symbol must occur in to grow a tag from it
MAX_TAG_CHARS = 40  # a tag grows no longer than this (a title template would otherwise become one unit)
MAX_BRACKETED_CHARS = 40
NOT_SEEDS = ("助詞", "助動詞", "空白")  # parts of speech a tag does not grow from
SYMBOLS = ("補助記号", "記号", "空白")  # parts of speech an n-gram does not cross
#: a unit is folded into another that contains it when it lies inside that one in this share of its texts
FOLD_SHARE = 0.8
#: a unit "keeps its place" when at least this share of its occurrences sit at the start (or at the end)
POSITION_REGULARITY = 0.8

TextUnits = dict[str, list[Span]]  # unit key (NFKC text) -> its occurrences in one text


@lru_cache(maxsize=1)
def _bracketed() -> re.Pattern[str]:
    """An opening bracket or quote of any script (Unicode Ps or Pi), up to MAX_BRACKETED_CHARS other characters,
    and a closing one (Pe or Pf). Built from the Unicode database once, when the first text is read."""
    by_category: dict[str, list[str]] = defaultdict(list)
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        if category in ("Ps", "Pe", "Pi", "Pf"):
            by_category[category].append(re.escape(chr(code)))
    opening = "".join(by_category["Ps"] + by_category["Pi"])
    closing = "".join(by_category["Pe"] + by_category["Pf"])
    return re.compile(f"[{opening}][^{opening}{closing}]{{1,{MAX_BRACKETED_CHARS}}}[{closing}]")


def _spans_of(text: str, origin: list[int], found: Iterable[tuple[int, int]], kind: str) -> list[Span]:
    """Spans [start, end) of the NFKC text, mapped back onto the original `text` through `origin` (from
    `normalised_with_offsets`, computed once per text by the caller)."""
    return [Span(text[origin[a] : origin[b - 1] + 1], origin[a], origin[b - 1] + 1, kind) for a, b in found]


def bracketed_spans(text: str) -> list[Span]:
    """Bracketed segments of `text`, brackets included, with their spans in the original text."""
    norm, origin = normalised_with_offsets(text)
    return _spans_of(text, origin, ((m.start(), m.end()) for m in _bracketed().finditer(norm)), "bracket")


def tag_spans(text: str, tags: Collection[str]) -> list[Span]:
    """Every occurrence of the grown tags (NFKC strings) in `text`, with spans in the original text."""
    norm, origin = normalised_with_offsets(text)
    found = []
    for tag in tags:
        start = norm.find(tag)
        while start >= 0:
            found.append((start, start + len(tag)))
            start = norm.find(tag, start + len(tag))
    return _spans_of(text, origin, found, "tag")


def normalise_text(text: str) -> str:
    """NFKC character by character, as `normalised_with_offsets` reads it (so offsets map back one to one)."""
    return normalised_with_offsets(text)[0]


def _beside(norm: str, start: int, end: int, step: int) -> str | None:
    """The character just before (step -1) or after (step 1) the span, None at the text's edge."""
    at = end if step > 0 else start - 1
    return norm[at] if 0 <= at < len(norm) else None


def _grow(norms: Sequence[str], occurrences: list[tuple[int, int, int]]) -> str:
    """The maximal span around one seed that travels with it: extend left, then right, one character at a time
    while the same character sits there in at least TRAVELS_WITH of the seed's occurrences (those without it
    drop out). Returns the NFKC text of the span, stripped of surrounding spaces."""
    need = TRAVELS_WITH * len(occurrences)
    for step in (-1, 1):
        while occurrences[0][2] - occurrences[0][1] < MAX_TAG_CHARS:
            beside = Counter(_beside(norms[i], start, end, step) for i, start, end in occurrences)
            char, count = beside.most_common(1)[0]
            if char is None or count < need:
                break
            occurrences = [
                (i, start + min(step, 0), end + max(step, 0))
                for i, start, end in occurrences
                if _beside(norms[i], start, end, step) == char
            ]
    i, start, end = occurrences[0]
    return norms[i][start:end].strip()


def grow_tags(texts: Sequence[str], labels: Sequence[str]) -> list[str]:
    """The tags the training data defines (see the module's docstring): per (seed, label), the seed's first
    occurrence in each of its texts of that label grows into the span that travels with it. Kept when it grew
    past the seed, or when the seed is a symbol (an emoji, a ★) that is pure on its own: a content word that did
    not grow is a unit already."""
    norms = [normalise_text(t) for t in texts]
    seeds: dict[tuple[str, str], list[tuple[int, int, int]]] = defaultdict(list)
    seed_texts: dict[str, Counter] = defaultdict(Counter)
    content: set[str] = set()
    for i, (norm, label) in enumerate(zip(norms, labels, strict=True)):
        seen: set[str] = set()
        for w in located_words(norm):
            if w.pos1 in NOT_SEEDS or not w.surface.strip() or w.surface in seen:
                continue
            seen.add(w.surface)
            seeds[(w.surface, label)].append((i, w.start, w.end))
            seed_texts[w.surface][label] += 1
            if w.is_content:
                content.add(w.surface)
    tags = set()
    for (seed, label), occurrences in seeds.items():
        if len(occurrences) < MIN_GROWTH_TEXTS:
            continue
        tag = _grow(norms, occurrences)
        grew = tag != seed and len(tag) > len(seed.strip())
        pure_symbol = seed not in content and seed_texts[seed][label] >= MIN_PURITY * sum(seed_texts[seed].values())
        if tag and (grew or pure_symbol):
            tags.add(tag)
    return sorted(tags)


def ngram_spans(text: str, tokens: Sequence[Any]) -> list[Span]:
    """Runs of 2..MAX_NGRAM adjacent MeCab words (whitespace between them allowed, no punctuation in them) that
    start and end with a content word."""
    found = []
    for i, first in enumerate(tokens):
        if not first.is_content:
            continue
        for n in range(2, MAX_NGRAM + 1):
            if i + n > len(tokens):
                break
            run = tokens[i : i + n]
            if run[-1].pos1 in SYMBOLS or text[run[-2].end : run[-1].start].strip():
                break
            if run[-1].is_content:
                found.append(Span(text[first.start : run[-1].end], first.start, run[-1].end, "ngram"))
    return found


def text_units(text: str, tags: Collection[str] = ()) -> TextUnits:
    """Every candidate unit of `text`, keyed by its NFKC text, with the spans of all its occurrences (a span
    found as two kinds, say a noun span that is also a bigram, is listed once, as the first kind); `tags` are
    the ones the training data grew (`grow_tags`)."""
    tokens = located_words(text)
    units: TextUnits = defaultdict(list)
    seen: set[tuple[int, int]] = set()
    spans = [*unit_spans(text, tokens), *tag_spans(text, tags), *bracketed_spans(text), *ngram_spans(text, tokens)]
    for span in spans:
        if (span.start, span.end) in seen or span.end <= span.start:
            continue
        seen.add((span.start, span.end))
        units[normalise(span.text)].append(span)
    return dict(units)


def training_counts(texts: Iterable[str], labels: Iterable[str], tags: Collection[str] = ()) -> dict[str, Counter]:
    """For every unit, how many training texts of each label contain it (once per text): the unit's own purity,
    not that of the words it is made of."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for text, label in zip(texts, labels, strict=True):
        for unit in text_units(text, tags):
            counts[unit][label] += 1
    return counts


def unit_kind(occurrences: Iterable[Span]) -> str:
    """The kind a unit is reported as: bracket beats tag beats word beats span beats n-gram."""
    kinds = {s.kind for s in occurrences}
    return next(k for k in ("bracket", "tag", "word", "span", "ngram") if k in kinds)


def _place(text: str, span: Span) -> str:
    if not text[: span.start].strip():
        return "start"
    if not text[span.end :].strip():
        return "end"
    return "middle"


def unit_evidence(
    key: str,
    label: str,
    texts: Sequence[str],
    units: Sequence[TextUnits],
    indices: Sequence[int],
    train: Counter,
    label_train_texts: int,
) -> dict[str, Any]:
    """What says a unit is a format artefact rather than topic, measured on its occurrences in `indices`: its
    usual place (start / middle / end) and the share of occurrences there, whether it is bracketed or sits
    inside brackets, and the share of its label's training texts that contain it."""
    places: Counter = Counter()
    inside = 0
    occurrences = [(i, s) for i in indices for s in units[i][key]]
    for i, span in occurrences:
        places[_place(texts[i], span)] += 1
        brackets = [b for spans in units[i].values() for b in spans if b.kind == "bracket"]
        inside += any(b.start <= span.start and span.end <= b.end for b in brackets)
    place, count = places.most_common(1)[0] if places else ("middle", 0)
    n = len(occurrences) or 1
    return {
        "kind": unit_kind(s for _, s in occurrences),
        "place": place,
        "position_regularity": count / n,
        "keeps_its_place": place != "middle" and count / n >= POSITION_REGULARITY,
        "bracketed": inside / n,
        "label_train_share": train[label] / label_train_texts if label_train_texts else 0.0,
    }


def _inside_share(small: str, big: str, units: Sequence[TextUnits], indices: Sequence[int]) -> float:
    """Share of the texts (of `small`'s) in which an occurrence of `small` lies inside one of `big`."""
    inside = sum(
        any(b.start <= s.start and s.end <= b.end for s in units[i][small] for b in units[i].get(big, []))
        for i in indices
    )
    return inside / len(indices) if indices else 0.0


def fold_overlapping(
    pairs: Sequence[tuple[str, str]], units: Sequence[TextUnits], support: dict[tuple[str, str], list[int]]
) -> dict[tuple[str, str], tuple[str, str]]:
    """Each (unit, label) pair that overlaps a bigger or smaller one of the same label mapped to the one that
    stays: the bigger unit when the smaller lies inside it in at least FOLD_SHARE of the smaller's texts (【X】
    over X and over 【X), else the smaller (a longer context around a unit that also works on its own). Pairs
    that stay map to themselves; all given pairs carry the effect, so the kept one does too."""
    keep = {pair: pair for pair in pairs}
    by_length = sorted(pairs, key=lambda p: (-len(p[0]), p))
    for small in sorted(pairs, key=lambda p: (len(p[0]), p)):
        for big in by_length:
            if big[1] != small[1] or big == small or small[0] not in big[0] or keep[big] != big:
                continue
            if keep[small] != small:
                break
            if _inside_share(small[0], big[0], units, support[small]) >= FOLD_SHARE:
                keep[small] = big
            else:
                keep[big] = small
    return {pair: _root(keep, pair) for pair in pairs}


def _root(keep: dict[tuple[str, str], tuple[str, str]], pair: tuple[str, str]) -> tuple[str, str]:
    while keep[pair] != pair:
        pair = keep[pair]
    return pair
