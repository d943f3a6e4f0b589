"""calibration: ECE near 0 for a calibrated predictor, large for an over-confident one."""

from __future__ import annotations

import json

import numpy as np

from mikiwame.plugins.analyzers.calibration import calibration_summary

N = 5_000


def test_a_perfectly_calibrated_predictor_has_ece_near_zero():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(1 / 6, 1.0, N)
    correct = rng.random(N) < confidence
    summary = calibration_summary(confidence, correct)
    assert summary["ece"]["value"] < 0.03
    assert summary["ece"]["low"] <= summary["ece"]["value"] <= summary["ece"]["high"]
    assert abs(summary["overconfidence"]) < 0.03


def test_an_over_confident_predictor_has_a_large_ece():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.9, 1.0, N)
    correct = rng.random(N) < 0.6
    summary = calibration_summary(confidence, correct)
    assert 0.3 < summary["ece"]["value"] < 0.4  # mean confidence 0.95, accuracy 0.6
    assert summary["overconfidence"] > 0.3
    assert sum(summary["histogram"]["hits"]) + sum(summary["histogram"]["errors"]) == N
    assert sum(b["n"] for b in summary["reliability"]) == N


def test_analyzer_writes_reliability_diagram_for_the_test_split(planted_run):
    result = json.loads((planted_run / "analyses" / "calibration.json").read_text(encoding="utf-8"))
    assert result["plotted_split"] == "test" and result["splits"]["test"]["n"] == 96
    assert (planted_run / result["figure"]).stat().st_size > 0
