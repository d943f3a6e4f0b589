"""The engine's promises: bit-exact resume, accumulation equals a larger batch, early stopping restores the
best weights, precision settings that cannot work are refused, a saved config reproduces its run."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch
from safetensors.torch import load_file

from mikiwame.framework.config import RunConfig
from mikiwame.framework.engine import make_accelerator
from mikiwame.framework.errors import ConfigError, MikiwameError
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.predict import RunPredictor
from mikiwame.framework.runner import run

from .conftest import tiny_config


def weights(run_dir):
    return load_file(run_dir / "model" / "model.safetensors")


def assert_same_run(a, b):
    """Bit-exact: every trained tensor, every per-epoch figure (train_loss included), the final metrics and the
    saved predictions."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    for key in ("epochs", "steps", "after", "best_epoch", "optimizer_steps"):
        assert ma[key] == mb[key], key
    assert (a / "predictions.jsonl").read_text() == (b / "predictions.jsonl").read_text()


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """3 epochs of 15 steps (120 examples, batch 8), dropout on: checkpoints at steps 10 (epoch 1), 20 (the
    middle of epoch 2), 30 (the end of epoch 2) and 40 (the middle of epoch 3)."""
    return run(tiny_config(tmp_path_factory.mktemp("straight"), epochs=3, save_every=10, keep_checkpoints=10))


def resumed_from(checkpoint, output_dir):
    config = RunConfig.load(checkpoint.parent.parent / "config.json")
    config.output_dir, config.resume = str(output_dir), str(checkpoint)
    return run(config)


@pytest.mark.parametrize(
    "step", ["step-000010", "step-000020", "step-000030", "step-000040"], ids=["epoch1-mid", "epoch2-mid",
    "epoch2-boundary", "epoch3-mid"]
)  # fmt: skip
def test_resume_is_bit_exact_in_weights_and_per_epoch_metrics(straight, tmp_path, step):
    checkpoints = sorted((straight / "checkpoints").glob("step-*"))
    assert [c.name for c in checkpoints] == ["step-000010", "step-000020", "step-000030", "step-000040"]
    resumed = resumed_from(straight / "checkpoints" / step, tmp_path)
    assert_same_run(straight, resumed)
    assert "resume" not in json.loads((resumed / "config.json").read_text())


def test_an_incomplete_checkpoint_falls_back_to_the_previous_complete_one(straight, tmp_path, capsys):
    partial = tmp_path / ".killed.partial"
    shutil.copytree(straight / "checkpoints", partial / "checkpoints")
    shutil.copy(straight / "config.json", partial / "config.json")
    newest = partial / "checkpoints" / "step-000040"
    tensors = newest / "tensors.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:1000])  # killed while writing
    resumed = resumed_from(newest, tmp_path / "out")
    message = capsys.readouterr().err
    assert "step-000040 is incomplete" in message and "resuming from" in message and "step-000030" in message
    assert_same_run(straight, resumed)
    notices = json.loads((resumed / "metrics.json").read_text())["notices"]
    assert any("incomplete" in n["text"] for n in notices)


def test_a_checkpoint_of_another_task_is_refused(straight, tmp_path):
    from .conftest import labelled_rows

    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in labelled_rows()), encoding="utf-8")
    config = tiny_config(tmp_path / "out", task="csv", data=str(data), train_size=None)
    config.resume = str(straight / "checkpoints" / "step-000020")
    with pytest.raises(MikiwameError, match="cannot be resumed by this run.*labels"):
        run(config)
    assert not any((tmp_path / "out").iterdir())


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


def test_a_grad_scaler_run_warns_nothing_about_the_optimizer_and_schedule_order(tmp_path, monkeypatch):
    """fp16 needs CUDA, but its grad scaler runs on the CPU too: planted into the accelerator, it patches
    `optimizer.step` at every step as on a GPU, where the schedule built after Accelerate's optimizer made torch
    warn at every fp16 run (seen on a lent H200)."""
    from mikiwame.framework import runner

    def with_scaler(*args, **kwargs):
        accelerator = make_accelerator(*args, **kwargs)
        accelerator.scaler = torch.amp.GradScaler("cpu")
        return accelerator

    monkeypatch.setattr(runner, "make_accelerator", with_scaler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = run(tiny_config(tmp_path, epochs=1))
    assert [str(w.message) for w in caught if "optimizer.step()" in str(w.message)] == []
    metrics = json.loads((done / "metrics.json").read_text())
    assert metrics["optimizer_steps"] == 15 and metrics["epochs"][0]["train_loss"] > 0


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
    assert metrics["kept_epoch"] == best["epoch"]
    # The saved model is the best epoch's: its validation loss, predicted afresh, is the best one recorded.
    assert _validation_loss_of_saved_model(done) == pytest.approx(best["validation_loss"], abs=1e-4)


def _validation_loss_of_saved_model(done) -> float:
    predictor = RunPredictor(done, build_plugin_set())
    rows = [json.loads(line) for line in (done / "predictions.jsonl").open() if '"validation"' in line]
    probs = predictor.probabilities([r["text"] for r in rows])
    gold = torch.tensor([predictor.labels.index(r["gold"]) for r in rows])
    return torch.nn.functional.nll_loss(probs.log(), gold).item()


def test_patience_0_keeps_the_model_as_trained_and_restore_best_the_best_epoch(tmp_path):
    # The untreated figure of an over-fitting run: without early stopping the saved model is the last epoch's;
    # --restore-best (a countermeasure) keeps the best one instead.
    values = dict(train_size=24, epochs=6, lr=1e-2, patience=0, dropout=0.0, warmup_ratio=0.0)
    as_trained = run(tiny_config(tmp_path / "as_trained", **values))
    restored = run(tiny_config(tmp_path / "restored", restore_best=True, **values))
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (as_trained, restored))
    assert m1["epochs"] == m2["epochs"] and m1["best_epoch"] == m2["best_epoch"] < 6  # same training, over-fitted
    last, best = m1["epochs"][-1], min(m1["epochs"], key=lambda h: h["validation_loss"])
    assert (m1["kept_epoch"], m2["kept_epoch"]) == (6, best["epoch"])
    assert _validation_loss_of_saved_model(as_trained) == pytest.approx(last["validation_loss"], abs=1e-4)
    assert _validation_loss_of_saved_model(restored) == pytest.approx(best["validation_loss"], abs=1e-4)


def test_a_saved_config_reproduces_the_run(tmp_path):
    first = run(tiny_config(tmp_path))
    again = run(RunConfig.load(first / "config.json"))
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (first, again))
    assert m1["after"] == m2["after"]
    assert m1["epochs"] == m2["epochs"]
