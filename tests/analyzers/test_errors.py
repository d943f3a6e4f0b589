"""errors lists what the saved model gets wrong, predicted afresh, and says when learning dynamics are missing; the
task's own slices (JRTE's annotator votes) and the CSV export of every error."""

from __future__ import annotations

import csv
import json
import shutil

from mikiwame.framework.analysis import run_analyzers
from mikiwame.framework.config import RunConfig
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.predict import RunPredictor
from mikiwame.framework.runner import run
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


WORDS = {
    "positive": ["快適", "親切", "清潔"],
    "neutral": ["駅前", "二階", "十時"],
    "negative": ["騒音", "不潔", "狭い"],
}


def _votes_run(tmp_path):
    """A JRTE-format file where texts the annotators agreed on carry their label's words, and texts they split
    on carry another label's words: a model of the words is right on every unanimous text and wrong on every
    split one."""
    labels, code = list(WORDS), {"positive": "1", "neutral": "0", "negative": "-1"}
    lines = []
    for k, label in enumerate(labels):
        other = labels[(k + 1) % 3]
        for i in range(12):
            split = ("train", "train", "dev", "test")[i % 4]
            text = f"{WORDS[label][i % 3]}な部屋でした({i})"
            lines.append((f"u{k}{i}", code[label], text, json.dumps({code[label]: 3}), split))
        for i in range(4):
            start = "=" if i == 0 else ""  # a formula-like text: the CSV must keep it inert
            text = f"{start}{WORDS[other][i % 3]}な部屋でした(票{i})"
            lines.append((f"s{k}{i}", code[label], text, json.dumps({code[label]: 2, code[other]: 1}), "test"))
    data = tmp_path / "pn.tsv"
    data.write_text("".join("\t".join(line) + "\n" for line in lines), encoding="utf-8")
    return run(RunConfig(task="jrte-pn", data=str(data), model="tfidf-lr", output_dir=str(tmp_path / "runs")))


def test_the_tasks_vote_slices_show_where_errors_concentrate_and_every_error_goes_to_csv(tmp_path):
    run_dir = _votes_run(tmp_path)
    result = run_analyzers(build_plugin_set(), run_dir, ["errors"])["errors"]
    votes = {s["value"]: s["accuracy"] for s in result["slices"]["test"] if s["feature"] == "annotator votes"}
    assert votes["unanimous"]["value"] == 1.0 and votes["unanimous"]["n"] == 9
    assert votes["split"]["value"] == 0.0 and votes["split"]["n"] == 12
    assert result["csv"] == "analyses/errors.csv"
    with (run_dir / "analyses" / "errors.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(split["n_errors"] for split in result["errors"].values()) >= 12
    assert {r["annotator votes"] for r in rows if r["split"] == "test"} == {"split"}
    formula = [r["text"] for r in rows if r["id"].startswith("s") and r["id"].endswith("0")]
    assert len(formula) == 3 and all(t.startswith("'=") for t in formula)
