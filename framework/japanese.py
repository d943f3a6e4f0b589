"""Japanese words as analyzers count them: MeCab (fugashi + unidic-lite) words, plus merged noun spans.

UniDic cuts names into short units (外務省 → 外務|省, トヨタ自動車 → トヨタ|自動|車), so a ministry or a company
never appears as one word. Analyzers that ask "which words go with which label" or "which entities does the
model lean on" count both the words and the spans of consecutive nouns, so either unit can show up. One
shared tagger, NFKC-normalised input: the same text always gives the same units, in every analyzer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

#: parts of speech that continue a noun span: nouns (incl. 固有名詞, 数詞) and noun-like suffixes (省, 車, 氏)
SPAN_POS1 = ("名詞", "接尾辞")
KATAKANA = re.compile(r"^[\u30a0-\u30ffー]+$")
LATIN_ACRONYM = re.compile(r"(?<![A-Za-z])[A-Z][A-Z0-9&]+(?![a-z])")
DIGITS = re.compile(r"\d")


#: entity types: UniDic's 固有名詞 subtypes 人名 and 地名, and organisations (from a gazetteer only)
PERSON, PLACE, ORGANISATION = "人名", "地名", "組織"


@dataclass(frozen=True)
class Word:
    """One MeCab word with the UniDic fields analyzers use. `located_words` also fills the finer parts of speech
    (pos3: 人名/地名/..., pos4: 姓/名/...) and the character span [start, end) in the caller's original text."""

    surface: str
    pos1: str
    pos2: str
    lemma: str | None
    pos3: str = ""
    pos4: str = ""
    start: int = -1
    end: int = -1

    @property
    def is_proper_noun(self) -> bool:
        return self.pos1 == "名詞" and self.pos2 == "固有名詞"

    @property
    def is_noun(self) -> bool:
        return self.pos1 == "名詞"

    @property
    def is_numeral(self) -> bool:
        return self.pos2 == "数詞" or bool(DIGITS.search(self.surface))

    @property
    def is_content(self) -> bool:
        """Words worth counting: not particles, auxiliaries, punctuation or whitespace."""
        return self.pos1 not in ("助詞", "助動詞", "補助記号", "空白", "記号")

    @property
    def is_katakana_abbreviation(self) -> bool:
        """略語-like katakana: 2–4 katakana characters that UniDic does not know (スマホ) or knows as a loanword
        whose source is much longer than the katakana (パソコン ← personal computer, テレビ ← television)."""
        if not (2 <= len(self.surface) <= 4 and KATAKANA.match(self.surface)):
            return False
        if self.lemma is None:
            return True
        _, _, gloss = self.lemma.partition("-")
        letters = sum(c.isascii() and c.isalpha() for c in gloss)
        return letters >= 2.5 * len(self.surface)


@lru_cache(maxsize=1)
def _tagger() -> Any:
    import fugashi
    import unidic_lite

    return fugashi.Tagger(f"-d {unidic_lite.DICDIR}")


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def words(text: str) -> list[Word]:
    """The MeCab words of the NFKC-normalised text."""
    return [
        Word(w.surface, w.feature.pos1 or "", w.feature.pos2 or "", w.feature.lemma) for w in _tagger()(normalise(text))
    ]


def noun_spans(tokens: list[Word]) -> list[str]:
    """Runs of two or more consecutive nouns / noun suffixes, joined (外務|省 → 外務省), that contain at least
    one noun; single words are not repeated here."""
    spans: list[str] = []
    run: list[Word] = []
    for token in [*tokens, None]:
        if token is not None and token.pos1 in SPAN_POS1 and (run or token.is_noun):
            run.append(token)
            continue
        if len(run) >= 2:
            spans.append("".join(w.surface for w in run))
        run = [token] if token is not None and token.is_noun else []
    return spans


@dataclass(frozen=True)
class Span:
    """A unit of a text with its character span [start, end) in the original (not normalised) text.
    `kind` is "word" or "span" (merged nouns) for units, or an entity type (人名, 地名, 組織, ...)."""

    text: str
    start: int
    end: int
    kind: str
    group: str = ""


def normalised_with_offsets(text: str) -> tuple[str, list[int]]:
    """NFKC character by character, with the original index of every normalised character, so units found
    in the normalised text can be cut out of (or replaced in) the original text, leaving the rest untouched."""
    pieces = [normalise(c) for c in text]
    origin = [i for i, piece in enumerate(pieces) for _ in piece]
    return "".join(pieces), origin


def located_words(text: str) -> list[Word]:
    """The MeCab words of `text`, each with its finer parts of speech and its span in the original text."""
    norm, origin = normalised_with_offsets(text)
    found: list[Word] = []
    position = 0
    for w in _tagger()(norm):
        start = norm.find(w.surface, position)
        if start < 0 or not w.surface:
            continue
        position = start + len(w.surface)
        f = w.feature
        found.append(
            Word(
                w.surface,
                f.pos1 or "",
                f.pos2 or "",
                f.lemma,
                f.pos3 or "",
                f.pos4 or "",
                origin[start],
                origin[position - 1] + 1,
            )
        )
    return found


def _runs(tokens: list[Word], keep: Any) -> list[list[Word]]:
    """Maximal runs of adjacent tokens (no gap between them) for which `keep(previous_run, token)` holds."""
    runs: list[list[Word]] = []
    run: list[Word] = []
    for token in tokens:
        if keep(run, token) and (not run or run[-1].end == token.start):
            run.append(token)
            continue
        if run:
            runs.append(run)
        run = [token] if keep([], token) else []
    if run:
        runs.append(run)
    return runs


def unit_spans(text: str, tokens: list[Word] | None = None) -> list[Span]:
    """Content words and merged noun spans of `text` with their character spans: the units attributions are
    summed into. A merged span (外務|省 → 外務省) is listed besides its words."""
    tokens = located_words(text) if tokens is None else tokens
    units = [Span(text[w.start : w.end], w.start, w.end, "word") for w in tokens if w.is_content]
    for run in _runs(tokens, lambda run, t: t.pos1 in SPAN_POS1 and (bool(run) or t.is_noun)):
        if len(run) >= 2:
            units.append(Span(text[run[0].start : run[-1].end], run[0].start, run[-1].end, "span"))
    return units


def entity_group(kind: str, pos4: str) -> str:
    """Which entities may replace one another: any person for a person; a country (UniDic 地名 国) only for a
    country and a region or city for a region or city, so a swap does not turn home news into foreign news."""
    if kind == PLACE:
        return "国" if pos4 == "国" else "地域"
    return kind


def find_entities(text: str, gazetteer: Mapping[str, tuple[str, str]] | None = None) -> list[Span]:
    """Named entities of `text`, left to right, non-overlapping.

    Gazetteer entries (surface → (type, group)) win, longest first: UniDic has no organisation subtype, and
    阪神 the team is 地名 to UniDic. Then UniDic 固有名詞 人名 (a family name followed by a given name is one
    person) and 地名 (adjacent place words merged)."""
    found: list[Span] = []
    taken = [False] * len(text)
    entries = gazetteer or {}
    for surface in sorted(entries, key=lambda s: (-len(s), s)):
        kind, group = entries[surface]
        start = text.find(surface)
        while start >= 0:
            end = start + len(surface)
            if not any(taken[start:end]):
                found.append(Span(surface, start, end, kind, group))
                taken[start:end] = [True] * len(surface)
            start = text.find(surface, end)
    tokens = [w for w in located_words(text) if not any(taken[w.start : w.end])]
    for kind in (PERSON, PLACE):
        same = lambda run, t, kind=kind: t.is_proper_noun and t.pos3 == kind  # noqa: E731
        for run in _runs(tokens, same):
            start, end = run[0].start, run[-1].end
            found.append(Span(text[start:end], start, end, kind, entity_group(kind, run[-1].pos4)))
    return sorted(found, key=lambda s: s.start)


def has_latin_acronym(text: str) -> bool:
    """Latin-letter acronyms such as GDP, NHK, AI (two or more capitals, not the start of a word like iPhone)."""
    return bool(LATIN_ACRONYM.search(normalise(text)))
