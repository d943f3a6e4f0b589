"""The figures a run reports: sklearn's classification_report kept column-aligned when labels are Japanese."""

from __future__ import annotations

from rich.cells import cell_len
from sklearn.metrics import classification_report

from mikiwame.framework.metrics import summarize

GOLD = [0, 0, 1, 1, 2, 2, 2]
PREDICTED = [0, 1, 1, 1, 2, 0, 2]


def _widths(text: str) -> set[int]:
    return {cell_len(line) for line in text.splitlines() if line.strip()}


def test_classification_report_columns_align_with_japanese_labels():
    labels = ["経済", "スポーツ", "international"]
    text = summarize(GOLD, PREDICTED, [0.1] * 7, labels, intervals=False)["classification_report_text"]
    assert len(_widths(text)) == 1, text  # every row ends in the same terminal column
    sklearn = classification_report(GOLD, PREDICTED, target_names=labels, digits=3, zero_division=0)
    assert len(_widths(sklearn)) > 1  # the plant: sklearn pads by characters, so its rows do not align
    assert [line.split() for line in text.splitlines()] == [line.split() for line in sklearn.splitlines()]


def test_classification_report_with_ascii_labels_is_sklearns_own():
    labels = ["economy", "sports", "weather"]
    text = summarize(GOLD, PREDICTED, [0.1] * 7, labels, intervals=False)["classification_report_text"]
    assert text == classification_report(GOLD, PREDICTED, target_names=labels, digits=3, zero_division=0)
