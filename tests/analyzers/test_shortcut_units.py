"""The units a shortcut can be: bracketed segments (brackets included) and n-grams besides MeCab words; overlapping
units folded into the one that carries the effect; the evidence that a unit is a format artefact."""

from __future__ import annotations

from collections import Counter

from mikiwame.framework.japanese import normalise
from mikiwame.plugins.analyzers.shortcut_units import (
    fold_overlapping,
    grow_tags,
    text_units,
    training_counts,
    unit_evidence,
)


def test_bracketed_segments_are_units_with_their_brackets_in_every_bracket_form():
    for text, unit in [
        ("【売れ筋チェック】ソニーの新型テレビ", "【売れ筋チェック】"),
        ("［デジ通］iPhoneの新機能", "[デジ通]"),  # NFKC: full-width square brackets are the ASCII ones
        ("浅田真央が「引退しない」と語る", "「引退しない」"),
        ("映画『君の名は』が首位", "『君の名は』"),
        ("新型スマホ（写真）", "(写真)"),
        ("[PR] 新型スマホ", "[PR]"),
    ]:
        units = text_units(text)
        assert unit in units, (text, list(units))
        (span,) = units[unit]
        assert text[span.start] in "【［「『（[" and text[span.end - 1] in "】］」』）]"


def test_ngrams_join_adjacent_content_words_and_do_not_cross_punctuation():
    units = text_units("Sports Watch:浅田真央が語る")
    assert "Sports Watch" in units
    assert not any(":" in u for u in units)
    assert "猫、" not in text_units("猫、阪神が勝つ") and "猫" in text_units("猫、阪神が勝つ")


def test_a_unit_is_pure_on_itself_though_its_word_is_not():
    texts = ["新製品【話題】", "話題の新製品", "話題の映画", "話題のドラマ", "新型スマホ【話題】"]
    labels = ["kaden", "movie", "movie", "movie", "kaden"]
    counts = training_counts(texts, labels)
    assert counts["【話題】"] == Counter(kaden=2)
    assert counts["話題"] == Counter(kaden=2, movie=3)


def test_the_bracket_keeps_what_lies_inside_it_and_a_longer_context_folds_into_a_unit_that_works_alone():
    texts = [
        "新型テレビ【話題】",
        "新型スマホ【話題】",
        "新型カメラ【話題】",
        "独女が語る",
        "独女の本音",
        "独女が語る秋",
    ]
    units = [text_units(t) for t in texts]
    support = {
        ("【話題】", "k"): [0, 1, 2],
        ("話題", "k"): [0, 1, 2],
        ("独女", "d"): [3, 4, 5],
        ("独女が語る", "d"): [3, 5],
    }
    kept = fold_overlapping(list(support), units, support)
    assert kept[("話題", "k")] == kept[("【話題】", "k")] == ("【話題】", "k")
    assert kept[("独女が語る", "d")] == kept[("独女", "d")] == ("独女", "d")


def test_evidence_of_a_format_artefact():
    texts = ["新型テレビ【話題】", "新型スマホ【話題】", "新型カメラ【話題】", "【話題】の新型ロボット"]
    units = [text_units(t) for t in texts]
    evidence = unit_evidence("【話題】", "k", texts, units, [0, 1, 2, 3], Counter(k=6, m=1), 10)
    assert evidence["kind"] == "bracket" and evidence["place"] == "end"
    assert evidence["position_regularity"] == 0.75 and not evidence["keeps_its_place"]
    assert evidence["bracketed"] == 1.0 and evidence["label_train_share"] == 0.6
    inside = unit_evidence("テレビ", "k", texts, units, [0], Counter(k=1), 10)
    assert inside["bracketed"] == 0.0 and inside["place"] == "middle"


def test_brackets_of_every_unicode_kind_are_units_not_only_a_list_of_them():
    for text, unit in [
        ("〔特報〕日銀が利上げ", "〔特報〕"),
        ("〈注目〉新型スマホ", "〈注目〉"),
        ("新型スマホ《注目》", "《注目》"),
        ("首相が“異次元”と語る", "“異次元”"),
        ("〘特集〙大雨に警戒", "〘特集〙"),
        ("｛速報｝阪神が連勝", "{速報}"),  # NFKC: full-width curly brackets are the ASCII ones
    ]:
        assert unit in text_units(text), (text, list(text_units(text)))


def _labelled(tagged: list[str], other: list[str]) -> tuple[list[str], list[str]]:
    return [*tagged, *other], ["a"] * len(tagged) + ["b"] * len(other)


BODIES = ["日銀が追加利上げ", "新型スマホが発売", "阪神が連勝", "映画が首位", "首相が会見", "株価が反落", "大雨に警戒"]


def test_a_tag_grows_from_its_word_to_the_span_that_travels_with_it_whatever_its_shape():
    for tag, place in [("★★ 特報 ★★", "start"), ("｜ABC通信", "end"), ("#特報2026", "end"), ("vol.12", "end")]:
        tagged = [f"{tag}{b}" if place == "start" else f"{b}{tag}" for b in BODIES]
        texts, labels = _labelled(tagged, [f"特報の{b}" for b in BODIES])  # the word alone is impure
        tags = grow_tags(texts, labels)
        unit = normalise(tag)
        assert unit in tags, (tag, tags)
        counts = training_counts(texts, labels, tags)
        assert counts[unit] == Counter(a=len(BODIES)), "the whole tag is pure though the word inside is not"
        assert counts.get("特報", Counter())["b"] == len(BODIES) or "特報" not in unit


def test_a_neighbour_joins_only_when_it_travels_with_the_word_in_nine_of_ten_texts():
    """の grows nothing on its own (a particle is no seed), so what joins it to 特報 is the share alone."""
    nine = [f"特報の{b}" for b in BODIES] + ["特報の日銀", "特報の円安", "特報、円高"]
    assert "特報の" in grow_tags(nine, ["a"] * len(nine))
    eight = nine[:-2] + ["特報、円安", "特報、円高"]
    assert not any(t.startswith("特報") for t in grow_tags(eight, ["a"] * len(eight))), grow_tags(eight, ["a"] * 10)


def test_a_symbol_pure_on_its_own_is_a_unit_and_a_word_that_did_not_grow_is_not_repeated():
    texts, labels = _labelled([f"🔥{b}" for b in BODIES], [f"{b}です" for b in BODIES])
    tags = grow_tags(texts, labels)
    assert "🔥" in tags and "🔥" in text_units("🔥阪神が連勝", tags)
    assert not any(t in tags for t in ("阪神", "首相", "大雨")), tags
