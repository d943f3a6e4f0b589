"""errors lists what the saved model gets wrong, predicted afresh, and says when learning dynamics are missing."""

from __future__ import annotations

import json
import shutil

from mikiwame.framework.analysis import run_analyzers
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.predict import RunPredictor
from mikiwame.plugins.analyzers.errors_report import pair_rows


def _listed(result: dict) -> set[tuple[str, str]]:
    return {
        (example["split"], example["id"])
        for split in result["errors"].values()
        for pair in split["pairs"]
        for example in pair["examples"]
    }


def test_errors_are_exactly_the_saved_models_fresh_misclassifications(planted_run, tmp_path):
    """predictions.jsonl is doctored to claim every example is right: the analyzer must not believe it."""
    run_dir = shutil.copytree(planted_run, tmp_path / planted_run.name)
    path = run_dir / "predictions.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    path.write_text("".join(json.dumps({**r, "predicted": r["gold"]}, ensure_ascii=False) + "\n" for r in rows))
    plugins = build_plugin_set()
    result = run_analyzers(plugins, run_dir, ["errors"])["errors"]
    fresh = RunPredictor(run_dir, plugins).predict([r["text"] for r in rows])
    expected = {(r["split"], r["id"]) for r, p in zip(rows, fresh, strict=True) if p.label != r["gold"]}
    assert expected, "the tiny model makes errors, otherwise this test could not fail"
    assert _listed(result) == expected
    for split, summary in result["errors"].items():
        assert summary["n_errors"] == sum(s == split for s, _ in expected)
        assert summary["n"] == sum(r["split"] == split for r in rows)
    assert {r["id"] for r in result["train_wrong"]} == {i for s, i in expected if s == "train"}
    confidences = [r["confidence"] for r in result["most_confident_errors"]["test"]]
    assert confidences == sorted(confidences, reverse=True)


def test_slices_carry_n_and_a_wilson_interval(planted_run):
    result = json.loads((planted_run / "analyses" / "errors.json").read_text(encoding="utf-8"))
    test = result["slices"]["test"]
    features = {s["feature"] for s in test}
    assert {"length", "rare word pieces", "abbreviation", "number", "named entity (固有名詞)"} <= features
    lengths = [s for s in test if s["feature"] == "length"]
    assert sum(s["accuracy"]["n"] for s in lengths) == result["errors"]["test"]["n"]
    for s in test:
        a = s["accuracy"]
        assert a["method"] == "wilson" and a["low"] <= a["value"] <= a["high"] and a["n"] > 0


def test_learning_dynamics_from_a_run_with_track_train(planted_run):
    result = json.loads((planted_run / "analyses" / "errors.json").read_text(encoding="utf-8"))
    dynamics = result["train_dynamics"]
    assert dynamics["available"] and dynamics["epochs"] == [1, 2, 3]
    assert sum(dynamics["learned_at_epoch_counts"].values()) == dynamics["n"] == 180
    assert all(r["learned_at_epoch"] is None or r["learned_at_epoch"] > 2 for r in dynamics["late_or_never"])


def test_an_older_run_without_training_dynamics_gets_a_message_not_a_crash(planted_run, tmp_path):
    run_dir = shutil.copytree(planted_run, tmp_path / planted_run.name)
    (run_dir / "train_dynamics.json").unlink()
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    del metrics["steps"]
    (run_dir / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    produced = run_analyzers(build_plugin_set(), run_dir, ["errors", "curves"])
    dynamics = produced["errors"]["train_dynamics"]
    assert not dynamics["available"] and "--track-train" in dynamics["message"]
    assert produced["curves"]["runs"][0]["steps"] == []


def test_the_pair_table_shows_a_held_out_example_before_a_training_one():
    def split(text: str) -> dict:
        example = {"text": text, "confidence": 0.9}
        return {"n": 10, "n_errors": 1, "pairs": [{"gold": "a", "predicted": "b", "n": 1, "examples": [example]}]}

    headers, rows = pair_rows({"errors": {"train": split("訓練の文"), "test": split("評価の文")}})
    assert headers[1:3] == ["train (errors 1/10)", "test (errors 1/10)"]
    assert rows == [["a → b", "1", "1", "評価の文 (0.90)"]]
