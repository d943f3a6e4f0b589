"""The figures a run reports: sklearn's classification_report kept column-aligned when labels are Japanese."""

from __future__ import annotations

from rich.cells import cell_len
from sklearn.metrics import classification_report

from mikiwame.framework.figures import with_interval
from mikiwame.framework.metrics import mean_interval, summarize, wilson

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


def test_every_kind_of_figure_is_written_with_its_interval_the_same_way():
    rate, mean = wilson(3, 10), mean_interval([0.1, 0.5, 0.3, 0.9], seed=0)
    assert rate["low"] < 0.3 < rate["high"] and with_interval(rate) == f"0.30 [{rate['low']:.2f}, {rate['high']:.2f}]"
    assert mean["low"] < 0.45 < mean["high"] and with_interval(mean, "{:.3f}").startswith("0.450 [")
    accuracy = summarize([0, 1, 1, 0], [0, 1, 0, 0], [0.1] * 4, ["a", "b"])["accuracy"]
    assert with_interval(accuracy, "{:.3f}") == f"0.750 [{accuracy['low']:.3f}, {accuracy['high']:.3f}]"
    point = summarize([0, 1], [0, 1], [0.1, 0.2], ["a", "b"], intervals=False)["macro_f1"]
    assert with_interval(point, "{:.3f}") == "1.000"
    assert with_interval(wilson(0, 0)) == with_interval(mean_interval([], seed=0)) == "–"
