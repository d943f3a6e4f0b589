"""The units a shortcut can be: what a model may lean on in a short text, with every occurrence's character span.

A corpus artefact rarely lines up with one MeCab word. livedoor puts series tags such as 【売れ筋チェック】 in its
titles; the word inside the brackets may occur elsewhere too, so its purity is low while the bracketed tag is
almost pure. So a text's candidate units are
- its MeCab content words and merged noun spans (`framework.japanese.unit_spans`),
- its bracketed segments, brackets included: 【…】 「…」 『…』 ［…］ （…） [...] (NFKC folds the full-width square and
  round brackets into the ASCII ones, so both forms are one pattern),
- word n-grams of 2 and 3 adjacent MeCab words that start and end with a content word (so 猫、 or 独女が never
  compete with 猫 and 独女).
A unit is keyed by its NFKC text; deleting a unit deletes all its occurrences in a text.

Overlapping units that carry the same effect are folded (`fold_overlapping`) so that a report names 【X】 once,
not 【, 【X, X】 and X, and `unit_evidence` gives what marks a format artefact rather than topic: the same place in
most texts, a bracketed form, a large share of its label's training texts.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from mikiwame.framework.japanese import Span, located_words, normalise, normalised_with_offsets, unit_spans

BRACKETED = re.compile(r"【[^【】]*】|「[^「」]*」|『[^『』]*』|\[[^\[\]]*\]|\([^()]*\)")
MAX_NGRAM = 3
SYMBOLS = ("補助記号", "記号", "空白")  # parts of speech an n-gram does not cross
#: a unit is folded into another that contains it when it lies inside that one in this share of its texts
FOLD_SHARE = 0.8
#: a unit "keeps its place" when at least this share of its occurrences sit at the start (or at the end)
POSITION_REGULARITY = 0.8

TextUnits = dict[str, list[Span]]  # unit key (NFKC text) -> its occurrences in one text


def bracketed_spans(text: str) -> list[Span]:
    """Bracketed segments of `text`, brackets included, with their spans in the original text."""
    norm, origin = normalised_with_offsets(text)
    return [
        Span(text[origin[m.start()] : origin[m.end() - 1] + 1], origin[m.start()], origin[m.end() - 1] + 1, "bracket")
        for m in BRACKETED.finditer(norm)
    ]


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


def text_units(text: str) -> TextUnits:
    """Every candidate unit of `text`, keyed by its NFKC text, with the spans of all its occurrences (a span
    found as two kinds, say a noun span that is also a bigram, is listed once, as the first kind)."""
    tokens = located_words(text)
    units: TextUnits = defaultdict(list)
    seen: set[tuple[int, int]] = set()
    for span in [*unit_spans(text, tokens), *bracketed_spans(text), *ngram_spans(text, tokens)]:
        if (span.start, span.end) in seen or span.end <= span.start:
            continue
        seen.add((span.start, span.end))
        units[normalise(span.text)].append(span)
    return dict(units)


def training_counts(texts: Iterable[str], labels: Iterable[str]) -> dict[str, Counter]:
    """For every unit, how many training texts of each label contain it (once per text): the unit's own purity,
    not that of the words it is made of."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for text, label in zip(texts, labels, strict=True):
        for unit in text_units(text):
            counts[unit][label] += 1
    return counts


def unit_kind(occurrences: Iterable[Span]) -> str:
    """The kind a unit is reported as: bracket beats word beats span beats n-gram."""
    kinds = {s.kind for s in occurrences}
    return next(k for k in ("bracket", "word", "span", "ngram") if k in kinds)


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
