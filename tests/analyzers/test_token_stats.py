"""token-stats finds a planted word and stays quiet on shuffled labels."""

from __future__ import annotations

import json
import random

import numpy as np
from scipy import stats

from mikiwame.plugins.analyzers.token_stats import word_label_statistics

from .conftest import PLANTED_LABEL, PLANTED_WORD, planted_rows, read_headlines

ALPHA = 0.05
NULL_DATASETS = 20


def test_planted_word_is_the_top_word_of_its_label_and_significant():
    train = [r for r in planted_rows() if r["split"] == "train"]
    labels = sorted({r["label"] for r in train})
    result = word_label_statistics([r["text"] for r in train], [r["label"] for r in train], labels, alpha=ALPHA)
    top = result["top"][PLANTED_LABEL][0]
    assert (top["unit"], top["kind"]) == (PLANTED_WORD, "word")
    assert top["significant"] and top["q"] < 1e-6
    assert top["purity"] == 1.0
    for label in labels:
        if label != PLANTED_LABEL:
            assert PLANTED_WORD not in [row["unit"] for row in result["top"][label]]


def test_shuffled_labels_give_discoveries_no_more_often_than_the_fdr_level():
    """Under the complete null, BH bounds P(any discovery) by alpha; allow a one-sided 99% binomial margin."""
    train = [r for r in read_headlines() if r["split"] == "train"]
    texts, labels = [r["text"] for r in train], [r["label"] for r in train]
    names = sorted(set(labels))
    with_discovery = 0
    for seed in range(NULL_DATASETS):
        shuffled = labels[:]
        random.Random(seed).shuffle(shuffled)
        with_discovery += word_label_statistics(texts, shuffled, names, alpha=ALPHA)["discoveries"] > 0
    allowed = stats.binom.ppf(0.99, NULL_DATASETS, ALPHA)
    assert with_discovery <= allowed, f"{with_discovery}/{NULL_DATASETS} null data sets had a discovery"


def test_noun_spans_count_a_split_name_as_one_unit():
    texts = ["外務省が声明", "外務省が抗議", "外務省が会見", "日銀が利上げ", "日銀が据え置き", "日銀が会見"]
    labels = ["international"] * 3 + ["economy"] * 3
    result = word_label_statistics(texts, labels, ["economy", "international"], min_count=3)
    units = {(row["unit"], row["kind"]) for row in result["top"]["international"]}
    assert ("外務省", "span") in units and ("外務", "word") in units


def test_analyzer_on_a_planted_run_writes_result_heatmap_and_font_notice(planted_run):
    result = json.loads((planted_run / "analyses" / "token-stats.json").read_text(encoding="utf-8"))
    assert result["top"][PLANTED_LABEL][0]["unit"] == PLANTED_WORD
    assert (planted_run / result["figure"]).stat().st_size > 0
    from mikiwame.framework.plots import cjk_font

    assert bool(result["warnings"]) == (cjk_font() is None)
    assert np.isclose(sum(result["prior"].values()), 1.0)
