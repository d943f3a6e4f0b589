"""Japanese words as analyzers count them: MeCab (fugashi + unidic-lite) words, plus merged noun spans.

UniDic cuts names into short units (外務省 → 外務|省, トヨタ自動車 → トヨタ|自動|車), so a ministry or a company
never appears as one word. Analyzers that ask "which words go with which label" or "which entities does the
model lean on" count both the words and the spans of consecutive nouns, so either unit can show up. One
shared tagger, NFKC-normalised input: the same text always gives the same units, in every analyzer.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

#: parts of speech that continue a noun span: nouns (incl. 固有名詞, 数詞) and noun-like suffixes (省, 車, 氏)
SPAN_POS1 = ("名詞", "接尾辞")
KATAKANA = re.compile(r"^[\u30a0-\u30ffー]+$")
LATIN_ACRONYM = re.compile(r"(?<![A-Za-z])[A-Z][A-Z0-9&]+(?![a-z])")
DIGITS = re.compile(r"\d")


@dataclass(frozen=True)
class Word:
    """One MeCab word with the UniDic fields analyzers use."""

    surface: str
    pos1: str
    pos2: str
    lemma: str | None

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


def has_latin_acronym(text: str) -> bool:
    """Latin-letter acronyms such as GDP, NHK, AI (two or more capitals, not the start of a word like iPhone)."""
    return bool(LATIN_ACRONYM.search(normalise(text)))
