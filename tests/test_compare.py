"""`mikiwame compare`: a planted difference (an untrained model against a trained one on the same test texts) is a
fact with the right sign in either order; the same configuration run twice is no clear difference; runs tested on
other texts are refused with one message naming both runs and what differs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from mikiwame.framework.cli import main
from mikiwame.framework.compare import accuracy_difference
from mikiwame.framework.runner import run

from .conftest import REPO, one_torch_thread, tiny_config


def _refuse(constant: str) -> None:
    raise AssertionError(f"compare wrote {constant}, which is not JSON")


def compare_json(*runs: Path, output: Path) -> dict:
    assert main(["compare", *map(str, runs), "--format", "json", "--output", str(output)]) == 0
    return json.loads(output.read_text(encoding="utf-8"), parse_constant=_refuse)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """level1: a tiny BERT barely trained (chance level); level2: TF-IDF + logistic regression (well above it);
    again-1, again-2: one TF-IDF configuration twice with the same seed. All on the bundled headlines' test."""
    root = tmp_path_factory.mktemp("compare")
    with one_torch_thread():
        return {
            "level1": run(tiny_config(root, name="level1", epochs=1, lr=1e-5)),
            "level2": run(tiny_config(root, name="level2", model="tfidf-lr", peft="auto")),
            "again-1": run(tiny_config(root, name="again-1", model="tfidf-lr", peft="auto")),
            "again-2": run(tiny_config(root, name="again-2", model="tfidf-lr", peft="auto")),
        }


def test_a_planted_difference_is_a_fact_with_its_sign_in_either_order(runs, tmp_path):
    up = compare_json(runs["level1"], runs["level2"], output=tmp_path / "up.json")
    assert [r["name"] for r in up["runs"]] == ["level1", "level2"]
    (result,) = up["comparisons"]
    accuracy, test = result["accuracy"], result["accuracy"]["mcnemar"]
    assert result["n"] == 96 and accuracy["delta"] == pytest.approx(accuracy["b"] - accuracy["a"])
    assert accuracy["interval"][0] > 0 and test["only_b"] > test["only_a"] and test["p"] < 0.05
    assert result["macro_f1"]["interval"][0] > 0 and len(result["per_class_f1"]) == 6
    assert [(f["kind"], f["source"]) for f in result["findings"]] == [("fact", "compare")] * 2
    assert "higher" in result["findings"][0]["claim"]["en"] and "高い" in result["findings"][0]["claim"]["ja"]
    differences = {d["key"]: d["values"] for d in up["config_differences"]}
    assert differences["model"] == ["tiny", "tfidf-lr"] and "name" not in differences

    (down,) = compare_json(runs["level2"], runs["level1"], output=tmp_path / "down.json")["comparisons"]
    assert down["accuracy"]["delta"] == pytest.approx(-accuracy["delta"])
    assert down["accuracy"]["interval"][1] < 0 and down["accuracy"]["mcnemar"]["only_a"] == test["only_b"]
    assert down["findings"][0]["kind"] == "fact" and "lower" in down["findings"][0]["claim"]["en"]


def test_the_same_configuration_twice_is_no_clear_difference(runs, tmp_path):
    same = compare_json(runs["again-1"], runs["again-2"], output=tmp_path / "same.json")
    assert same["config_differences"] == []
    (result,) = same["comparisons"]
    assert result["accuracy"]["delta"] == 0 and result["accuracy"]["mcnemar"]["p"] == 1.0
    assert [f["kind"] for f in result["findings"]] == ["possibility"] * 2
    assert all("compare" in f["decide_by"] and "--seed" in f["decide_by"] for f in result["findings"])


def test_the_terminal_shows_names_the_paired_test_and_the_findings(runs, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["compare", str(runs["level1"]), str(runs["level2"]), str(runs["again-1"]), "--lang", "ja"]) == 0
    out = capsys.readouterr().out
    assert "level2 vs level1 on the same 96 test texts" in out and "again-1 vs level1" in out
    assert "McNemar exact: only first right" in out and "Configuration differences" in out
    assert "考察" in out and "level2 の正解率は level1 より高い" in out


def test_runs_tested_on_other_texts_are_refused_with_one_message(runs, tmp_path, capsys):
    with (REPO / "data" / "headlines" / "headlines.tsv").open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t")]
    kept = [r for r in rows if r["split"] != "test" or not r["id"].endswith("7")]
    data = tmp_path / "fewer.tsv"
    with data.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(kept)
    other = run(tiny_config(tmp_path / "runs", name="fewer", model="tfidf-lr", peft="auto", data=str(data)))
    with pytest.raises(SystemExit) as exit_:
        main(["compare", str(runs["level2"]), str(other)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("mikiwame: error:") == 1 and "Traceback" not in err
    assert str(runs["level2"]) in err and str(other) in err and "the number of test texts differs: 96 vs" in err


def test_the_courses_hand_made_mcnemar_is_what_compare_computes():
    """The issue's Level 1 vs Level 2: 107 texts only the fine-tuned model got right, 46 only the other, p = 8.9e-7
    (a user computed it by hand); 300 texts both got right and 47 neither, so accuracy rose by 61/500."""
    level1 = np.array([[True] * 300 + [True] * 46 + [False] * 107 + [False] * 47])
    level2 = np.array([[True] * 300 + [False] * 46 + [True] * 107 + [False] * 47])
    result = accuracy_difference(level1, level2)
    assert result["mcnemar"]["only_a"] == 46 and result["mcnemar"]["only_b"] == 107
    assert result["mcnemar"]["p"] == pytest.approx(8.9e-7, rel=0.01)
    assert result["delta"] == pytest.approx(61 / 500) and result["interval"][0] > 0
