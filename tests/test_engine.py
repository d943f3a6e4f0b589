"""The engine's promises: bit-exact resume, accumulation equals a larger batch, early stopping restores the
best weights, precision settings that cannot work are refused, a saved config reproduces its run."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.predict import RunPredictor
from mikiwame.framework.runner import run

from .conftest import tiny_config


def weights(run_dir):
    return load_file(run_dir / "model" / "model.safetensors")


def test_resume_from_mid_epoch_checkpoint_is_bit_exact(tmp_path):
    # 120 examples / batch 8 = 15 steps per epoch; step 10 is mid-epoch, dropout is on.
    straight = run(tiny_config(tmp_path, save_every=10, keep_checkpoints=10))
    checkpoints = sorted((straight / "checkpoints").glob("step-*"))
    assert [c.name for c in checkpoints] == ["step-000010", "step-000020", "step-000030"]
    config = RunConfig.load(straight / "config.json")
    config.resume = str(checkpoints[0])
    resumed = run(config)
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert json.loads((resumed / "metrics.json").read_text())["optimizer_steps"] == 30


def test_accumulating_four_batches_of_one_equals_one_batch_of_four(tmp_path):
    common = dict(dropout=0.0, epochs=1, train_size=48, warmup_ratio=0.0)
    accumulated = run(tiny_config(tmp_path, batch_size=1, grad_accum=4, **common))
    batched = run(tiny_config(tmp_path, batch_size=4, grad_accum=1, **common))
    steps = [json.loads((d / "metrics.json").read_text())["optimizer_steps"] for d in (accumulated, batched)]
    assert steps == [12, 12]
    a, b = weights(accumulated), weights(batched)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


def test_fp16_without_cuda_is_refused_with_a_bf16_suggestion(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA, where fp16 is valid")
    with pytest.raises(ConfigError, match="bf16"):
        run(tiny_config(tmp_path, mixed_precision="fp16"))
    assert not any(tmp_path.iterdir()), "a refused run must leave no directory"


def test_bf16_mixed_precision_trains_on_cpu(tmp_path):
    done = run(tiny_config(tmp_path, mixed_precision="bf16", epochs=1))
    metrics = json.loads((done / "metrics.json").read_text())
    assert metrics["optimizer_steps"] == 15
    assert torch.isfinite(torch.tensor(metrics["after"]["test"]["loss"]["value"]))


def test_early_stopping_restores_the_best_epoch(tmp_path):
    # Tiny data and a high learning rate over-fit fast: validation loss rises, patience 1 stops training.
    done = run(tiny_config(tmp_path, train_size=24, epochs=12, lr=1e-2, patience=1, dropout=0.0, warmup_ratio=0.0))
    metrics = json.loads((done / "metrics.json").read_text())
    history = metrics["epochs"]
    assert metrics["stopped_early"] is True
    best = min(history, key=lambda h: h["validation_loss"])
    assert metrics["best_epoch"] == best["epoch"] < history[-1]["epoch"]
    # The saved model is the best epoch's: its validation loss, predicted afresh, is the best one recorded.
    predictor = RunPredictor(done, build_plugin_set())
    rows = [json.loads(line) for line in (done / "predictions.jsonl").open() if '"validation"' in line]
    probs = predictor.probabilities([r["text"] for r in rows])
    gold = torch.tensor([predictor.labels.index(r["gold"]) for r in rows])
    loss = torch.nn.functional.nll_loss(probs.log(), gold).item()
    assert loss == pytest.approx(best["validation_loss"], abs=1e-4)


def test_a_saved_config_reproduces_the_run(tmp_path):
    first = run(tiny_config(tmp_path))
    again = run(RunConfig.load(first / "config.json"))
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (first, again))
    assert m1["after"] == m2["after"]
    assert m1["epochs"] == m2["epochs"]
