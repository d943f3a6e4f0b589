"""Whole runs on small files written here: the tfidf-lr floor through evaluation, run directory and
`mikiwame predict`; --train-size; sorted label maps; class weights reaching the loss; data checks saved and shown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from mikiwame.framework import engine
from mikiwame.framework.config import RunConfig
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.predict import RunPredictor
from mikiwame.framework.runner import _class_weights, run

from .conftest import finished_runs, labelled_rows, run_cli


def write_rows(path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...] = ("text", "label")) -> Path:
    path.write_text("\n".join(["\t".join(header)] + ["\t".join(r) for r in rows]) + "\n", encoding="utf-8")
    return path


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def tiny_config(data: Path, out: Path, **changes) -> RunConfig:
    values = dict(
        task="csv", data=str(data), model="tiny", peft="full", epochs=1, tiny_hidden=32, tiny_heads=2,
        tiny_vocab_size=300, batch_size=8, output_dir=str(out),
    )  # fmt: skip
    return RunConfig.of(**{**values, **changes})


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("tfidf")
    rows = labelled_rows()[::-1]  # labels first met in the order weather, economy, sports
    data = write_rows(tmp / "data.tsv", rows)
    return run(RunConfig(task="csv", data=str(data), model="tfidf-lr", output_dir=str(tmp / "runs"), train_size=12))


def test_tfidf_lr_run_is_evaluated_and_saved_like_any_run(tfidf_run):
    metrics = read_json(tfidf_run / "metrics.json")
    assert metrics["model"]["peft"] == "tfidf-lr"
    test = metrics["after"]["test"]
    assert test["n"] == 4 and 0.0 <= test["accuracy"]["low"] <= test["accuracy"]["value"] <= test["accuracy"]["high"]
    info = read_json(tfidf_run / "model_info.json")
    assert info["parameters_total"] == 3 * info["vocabulary"] + 3  # fitted coefficients and intercepts
    assert (tfidf_run / "plots" / "confusion_matrix.png").is_file()


def test_label_maps_are_sorted_and_saved(tfidf_run):
    expected = ["economy", "sports", "weather"]
    assert read_json(tfidf_run / "metrics.json")["labels"] == expected
    assert read_json(tfidf_run / "model" / "peft.json")["labels"] == expected
    assert read_json(tfidf_run / "data_checks.json")["labels"] == expected


def test_train_size_subsamples_train_stratified_and_leaves_other_splits(tfidf_run):
    counts = read_json(tfidf_run / "data_checks.json")["label_counts"]
    assert counts["train"] == {"economy": 4, "sports": 4, "weather": 4}
    assert sum(counts["validation"].values()) == 4 and sum(counts["test"].values()) == 4


def test_saved_tfidf_lr_run_predicts_what_the_run_predicted(tfidf_run):
    saved = [json.loads(line) for line in (tfidf_run / "predictions.jsonl").open(encoding="utf-8")]
    predictor = RunPredictor(tfidf_run, build_plugin_set())
    again = predictor.predict([r["text"] for r in saved])
    assert [p.label for p in again] == [r["predicted"] for r in saved]
    for p, r in zip(again, saved, strict=True):
        assert p.probabilities == pytest.approx(r["probabilities"], abs=1e-5)


def test_mikiwame_predict_cli_on_a_tfidf_lr_run(tfidf_run, tmp_path):
    result = run_cli("predict", str(tfidf_run), "株価が上昇した(99件目)", "台風が接近する", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "economy" in result.stdout and "weather" in result.stdout


def test_class_weights_balanced_reach_the_loss(tmp_path, monkeypatch):
    rows = labelled_rows(per_label=20)
    rows = rows[:20] + rows[20:28] + rows[40:45]  # 20 sports, 8 economy, 5 weather
    data = write_rows(tmp_path / "imbalanced.tsv", rows)
    seen: list = []
    original = F.cross_entropy

    def recording(logits, labels, *args, **kwargs):
        if kwargs.get("reduction", "mean") == "mean":  # the training loss, not per-example evaluation losses
            seen.append((labels.tolist(), kwargs.get("weight")))
        return original(logits, labels, *args, **kwargs)

    monkeypatch.setattr(engine.F, "cross_entropy", recording)
    final = run(tiny_config(data, tmp_path / "runs", class_weights="balanced"))
    train = read_json(final / "data_checks.json")["label_counts"]["train"]
    y = np.concatenate([np.full(n, i) for i, n in enumerate(train.values())])
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y)
    assert seen and all(w is not None for _, w in seen)
    assert seen[0][1].tolist() == pytest.approx(expected.tolist(), rel=1e-5)
    assert expected.max() > 2 * expected.min()  # imbalanced enough that the weights matter

    seen.clear()
    run(tiny_config(data, tmp_path / "runs"))
    assert seen and all(w is None for _, w in seen)


def test_balanced_class_weights_are_scikit_learns_with_a_label_missing_from_training():
    y = [0, 0, 0, 5, 5, 9]  # labels 1-4, 6-8 and 10-11 have no training example
    weights = _class_weights(y, 12, "balanced").tolist()
    expected = compute_class_weight("balanced", classes=np.array([0, 5, 9]), y=np.array(y))
    assert [weights[i] for i in (0, 5, 9)] == pytest.approx(expected.tolist())
    assert [w for i, w in enumerate(weights) if i not in (0, 5, 9)] == [1.0] * 9
    assert _class_weights(y, 12, "none") is None


def test_tfidf_lr_takes_class_weights_too(tmp_path):
    data = write_rows(tmp_path / "d.tsv", labelled_rows())
    final = run(
        RunConfig(task="csv", data=str(data), model="tfidf-lr", output_dir=str(tmp_path), class_weights="balanced")
    )
    assert read_json(final / "model_info.json")["class_weight"] == "balanced"


def test_data_checks_saved_and_shown_leakage_nfkc_duplicates_truncation(tmp_path, capsys):
    rows = [(t, lab, "train") for t, lab in labelled_rows(per_label=6)]
    rows += [
        (rows[0][0], rows[0][1], "test"),  # exact duplicate across splits
        ("ＡＢＣ放送の試合中継１", "sports", "train"),
        ("ABC放送の試合中継1", "sports", "validation"),  # the same after NFKC
        ("株価が大きく上昇した(1件目)", "economy", "validation"),  # exact duplicate of a train text
        ("猛暑日が続く見込み(3件目)", "weather", "test"),
        ("選手が試合で勝利した(5件目)", "sports", "test"),
    ]
    data = write_rows(tmp_path / "leaky.tsv", rows, header=("text", "label", "split"))
    options = {"split_column": "split"}
    final = run(tiny_config(data, tmp_path / "runs", max_length=6, options=options))
    checks = read_json(final / "data_checks.json")
    dup = checks["duplicates"]
    assert dup["exact_across_splits"] == 4 and dup["normalised_across_splits"] == 5
    assert any(g["text"] == "ABC放送の試合中継1" for g in dup["across_examples"])
    assert checks["truncation"]["max_length"] == 6
    assert sum(checks["truncation"]["truncated"].values()) > 0 and checks["truncation"]["longest_tokens"] > 6
    notices = [n["text"] for n in read_json(final / "metrics.json")["notices"]]
    assert any("5 texts appear in more than one split" in n for n in notices)
    assert any("truncated" in n for n in notices)
    shown = " ".join(capsys.readouterr().out.split())
    assert "5 texts appear in more than one split" in shown
    assert "duplicate texts (exact / NFKC-normalised): within a split 0 / 0, across splits 4 / 5" in shown
    assert "texts over 6 tokens (truncated)" in shown
    assert finished_runs(tmp_path / "runs") == [final]
