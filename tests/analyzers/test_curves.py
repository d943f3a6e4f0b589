"""curves: the over-fitting rule fires on an over-fitting history and run, and not on controls."""

from __future__ import annotations

import json

import pytest

from mikiwame.framework.runner import run
from mikiwame.plugins.analyzers.curves import diagnose

from .conftest import analyzer_config


def history(train: list[float], validation: list[float]) -> list[dict]:
    return [
        {"epoch": i + 1, "train_loss": t, "validation_loss": v, "validation_accuracy": 0.5}
        for i, (t, v) in enumerate(zip(train, validation, strict=True))
    ]


def test_rule_fires_when_validation_loss_stays_up_while_training_loss_falls():
    d = diagnose(history([1.0, 0.7, 0.5, 0.3, 0.2], [1.0, 0.8, 0.85, 0.9, 0.95]))
    assert d["overfitting"] and d["best_epoch"] == 2
    assert "rose after epoch 2" in d["text"]


@pytest.mark.parametrize(
    ("train", "validation"),
    [
        ([1.0, 0.7, 0.5, 0.3], [1.0, 0.8, 0.7, 0.6]),  # both falling
        ([1.0, 0.7, 0.5, 0.3], [1.0, 0.8, 0.85, 0.79]),  # one bump, then a new minimum
        ([1.0, 0.7, 0.5, 0.3], [1.0, 0.8, 0.805, 0.806]),  # above the minimum by less than 1%
        ([1.0, 0.7, 0.9, 1.1], [1.0, 0.8, 0.9, 1.0]),  # training loss rising too: diverging, not over-fitting
    ],
)
def test_rule_does_not_fire_on_controls(train, validation):
    assert not diagnose(history(train, validation))["overfitting"]


@pytest.mark.slow
def test_a_run_made_to_over_fit_is_diagnosed_and_a_normal_run_is_not(tmp_path):
    overfit = run(
        analyzer_config(tmp_path / "over", train_size=30, epochs=12, lr=1e-2, patience=100, analyze=["curves"])
    )
    normal = run(analyzer_config(tmp_path / "normal", epochs=5, analyze=["curves"]))
    over_result = json.loads((overfit / "analyses" / "curves.json").read_text(encoding="utf-8"))
    normal_result = json.loads((normal / "analyses" / "curves.json").read_text(encoding="utf-8"))
    assert over_result["runs"][0]["diagnosis"]["overfitting"], over_result["runs"][0]["diagnosis"]["text"]
    assert not normal_result["runs"][0]["diagnosis"]["overfitting"], normal_result["runs"][0]["diagnosis"]["text"]
    assert normal_result["runs"][0]["diagnosis"]["verdict"] != "under-fitting"


def test_eval_every_records_step_points_that_curves_reports(planted_run):
    metrics = json.loads((planted_run / "metrics.json").read_text(encoding="utf-8"))
    result = json.loads((planted_run / "analyses" / "curves.json").read_text(encoding="utf-8"))
    steps = result["runs"][0]["steps"]
    assert [s["step"] for s in steps] == list(range(6, metrics["optimizer_steps"] + 1, 6))
    assert all({"train_loss", "validation_loss", "validation_accuracy"} <= set(s) for s in steps)
    assert result["runs"][0]["step_diagnosis"]["text"]
    assert len(result["runs"][0]["epochs"]) == 3
