"""Re-prediction is the engine's evaluation: the analyzers' predictor and `mikiwame predict` give back
predictions.jsonl exactly (labels, and probabilities to the 6 decimals it stores), on a bf16 LoRA run with a
small `--max-length`; a classifier run tells a gradient analyzer in one line that it has no gradients."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mikiwame.framework.analysis import AnalysisContext
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.predict import RunPredictor
from mikiwame.framework.results import RunResults
from mikiwame.framework.runner import run

from .conftest import run_cli, tiny_config
from .test_runs import tfidf_run  # noqa: F401 (a fixture)

MAX_LENGTH = 10  # far below the headlines' lengths: most texts are truncated
SHARE_TOLERANCE = 0.05  # bf16 against fp32: largest difference of a piece's share of |attribution|


@pytest.fixture(scope="module")
def short_bf16_run(tmp_path_factory) -> Path:
    config = tiny_config(
        tmp_path_factory.mktemp("runs"), peft="lora", mixed_precision="bf16", max_length=MAX_LENGTH, lr=5e-3
    )
    return run(config)


def saved_rows(run_dir: Path, split: str) -> list[dict]:
    with (run_dir / "predictions.jsonl").open(encoding="utf-8") as fh:
        return [r for r in map(json.loads, fh) if r["split"] == split]


def rounded(probabilities: dict[str, float]) -> dict[str, float]:
    return {label: round(float(q), 6) for label, q in probabilities.items()}


def test_the_run_truncates_so_the_test_means_something(short_bf16_run):
    truncation = RunResults.load(short_bf16_run).data_checks["truncation"]
    assert truncation["max_length"] == MAX_LENGTH and truncation["truncated"]["test"] > 0


@pytest.mark.parametrize("split", ["validation", "test"])
def test_the_analyzers_predictor_reproduces_predictions_jsonl_exactly(short_bf16_run, split):
    context = AnalysisContext(RunResults.load(short_bf16_run), build_plugin_set())
    saved = saved_rows(short_bf16_run, split)
    again = context.predictor.predict([r["text"] for r in saved])
    assert [p.label for p in again] == [r["predicted"] for r in saved]
    assert [rounded(p.probabilities) for p in again] == [r["probabilities"] for r in saved]


def test_fp32_override_predicts_the_same_labels_but_not_the_same_numbers(short_bf16_run):
    """The control: the exact match above is the run's precision at work, not a tolerance that hides a change."""
    saved = saved_rows(short_bf16_run, "test")
    done = run_cli(
        "predict", str(short_bf16_run), *[r["text"] for r in saved], "--format", "jsonl", "--mixed-precision", "no"
    )
    assert done.returncode == 0, done.stderr
    again = [json.loads(line) for line in done.stdout.splitlines()]
    assert sum(a["label"] == r["predicted"] for a, r in zip(again, saved, strict=True)) >= 0.9 * len(saved)
    assert [rounded(a["probabilities"]) for a in again] != [r["probabilities"] for r in saved]


def shares(attribution) -> np.ndarray:
    return attribution.scores / np.abs(attribution.scores).sum()


def test_bf16_attributions_agree_with_the_fp32_path(short_bf16_run):
    """The run's path (bf16 frozen linears, eager attention on CPU, SDPA on a GPU) against fp32: each piece's
    share of its text's total |attribution| within SHARE_TOLERANCE; the control, another target class, is far
    outside it."""
    texts = [r["text"] for r in saved_rows(short_bf16_run, "test")][:16]
    plugins = build_plugin_set()
    bf16 = RunPredictor(short_bf16_run, plugins)
    targets = bf16.probabilities(texts).argmax(-1).tolist()
    attributor = bf16.attributor(n_steps=16)
    assert attributor.attention == ("eager" if bf16.accelerator.device.type == "cpu" else None)
    fast = attributor.attribute(texts, targets)
    other = attributor.attribute(texts, [(t + 1) % len(bf16.labels) for t in targets])
    assert bf16.model.config._attn_implementation == "sdpa", "attention must be switched back after attribution"
    reference = RunPredictor(short_bf16_run, plugins, mixed_precision="no").attributor(n_steps=16)
    slow = reference.attribute(texts, targets)
    differences = [float(np.abs(shares(a) - shares(b)).max()) for a, b in zip(fast, slow, strict=True)]
    control = [float(np.abs(shares(a) - shares(b)).max()) for a, b in zip(other, slow, strict=True)]
    assert max(differences) < SHARE_TOLERANCE, differences
    assert np.median(control) > SHARE_TOLERANCE, control


def test_mikiwame_predict_jsonl_reproduces_the_run_and_prints_no_loading_noise(short_bf16_run):
    saved = saved_rows(short_bf16_run, "test")
    done = run_cli("predict", str(short_bf16_run), *[r["text"] for r in saved], "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    again = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["text"] for a in again] == [r["text"] for r in saved]
    assert [a["label"] for a in again] == [r["predicted"] for r in saved]
    assert [rounded(a["probabilities"]) for a in again] == [r["probabilities"] for r in saved]
    for noise in ("Loading", "%|", "LOAD REPORT", "Some weights", "Warning"):
        assert noise not in done.stderr and noise not in done.stdout, noise


def test_analyze_prints_no_loading_noise(short_bf16_run):
    done = run_cli("analyze", str(short_bf16_run), "calibration", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    for noise in ("Loading", "%|", "LOAD REPORT", "Some weights", "Warning"):
        assert noise not in done.stderr, noise


def test_device_cuda_without_a_gpu_is_one_clear_error(short_bf16_run):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    done = run_cli("predict", str(short_bf16_run), "text", "--device", "cuda")
    assert done.returncode == 2 and "--device cuda" in done.stderr and "Traceback" not in done.stderr


def test_a_gradient_analyzer_on_a_classifier_run_says_so_in_one_line(tfidf_run):  # noqa: F811
    done = run_cli("analyze", str(tfidf_run), "shortcuts")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "shortcuts needs gradients" in lines[0] and "classifier:tfidf-lr" in lines[0]
    assert all(name in lines[0] for name in ("entity-bias", "errors", "calibration"))
    assert not (tfidf_run / "analyses" / "shortcuts.json").exists()


def test_probability_analyzers_work_on_a_classifier_run(tfidf_run):  # noqa: F811
    done = run_cli("analyze", str(tfidf_run), "entity-bias,errors,calibration")
    assert done.returncode == 0, done.stderr
    analyses = RunResults.load(tfidf_run).analyses
    assert {"entity-bias", "errors", "calibration"} <= set(analyses)
    assert analyses["errors"]["predicted_afresh"] is True


def test_a_small_memory_budget_bounds_the_passes_and_changes_no_attribution(short_bf16_run):
    """fp32, so batch composition cannot matter: one text and one integration step per pass gives what one pass
    over all texts and steps gives."""
    from mikiwame.framework.attribution import BatchAttributor, rows_within_budget

    texts = [r["text"] for r in saved_rows(short_bf16_run, "test")][:12]
    predictor = RunPredictor(short_bf16_run, build_plugin_set(), mixed_precision="no")
    one_row = rows_within_budget(predictor.model, MAX_LENGTH, 1)
    assert one_row == 1 and rows_within_budget(predictor.model, MAX_LENGTH, 1 << 30) > 64
    common = dict(n_steps=8, max_length=MAX_LENGTH)
    bounded = BatchAttributor(predictor.model, predictor.tokenizer, memory_budget=1, **common)
    unbounded = BatchAttributor(predictor.model, predictor.tokenizer, memory_budget=None, **common)
    targets = [0] * len(texts)
    for a, b in zip(bounded.attribute(texts, targets), unbounded.attribute(texts, targets), strict=True):
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
