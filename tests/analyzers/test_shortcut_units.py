"""The units a shortcut can be: bracketed segments (brackets included) and n-grams besides MeCab words; overlapping
units folded into the one that carries the effect; the evidence that a unit is a format artefact."""

from __future__ import annotations

from collections import Counter

from mikiwame.plugins.analyzers.shortcut_units import fold_overlapping, text_units, training_counts, unit_evidence


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
