"""Units are keyed by their NFKC text (the shortcuts analyzer's key), so the edits the shortcut cures make find a
full-width or half-width occurrence too, and cut it out of the original text without touching the rest."""

from __future__ import annotations

from mikiwame.framework.unit_edits import END, START, delete_unit, holds_unit, usual_place


def test_a_full_width_occurrence_of_an_nfkc_unit_is_found_and_deleted():
    text = "大谷が本塁打｜ＡＢＣ通信"
    assert holds_unit(text, "|ABC通信")
    assert delete_unit(text, "|ABC通信") == "大谷が本塁打"
    assert delete_unit("ｿｸﾎｳ 円高が進む ｿｸﾎｳ", "ソクホウ", "[UNK]") == "[UNK] 円高が進む [UNK]"


def test_a_text_without_the_unit_is_left_as_it_is():
    text = "ＡＢＣ社の新製品"  # ABC without the bar and 通信: not the unit
    assert not holds_unit(text, "|ABC通信")
    assert delete_unit(text, "|ABC通信") == text


def test_the_usual_place_is_read_from_the_nfkc_occurrences():
    assert usual_place(["本塁打｜ＡＢＣ通信", "円高｜ＡＢＣ通信", "首相"], "|ABC通信") == END
    assert usual_place(["ｿｸﾎｳ円高が進む", "ｿｸﾎｳ首相が会見"], "ソクホウ") == START
