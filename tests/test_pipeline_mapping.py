"""An off-the-shelf text-classification pipeline with its labels mapped onto the task's: the neutral band at its
edges, threshold tuning, the errors for maps that do not fit, and a run with a tiny local sentiment model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from transformers import pipeline

from mikiwame.framework.errors import ConfigError
from mikiwame.plugins.models.pipeline import LabelMapping, parse_label_map

from .conftest import save_sentiment_classifier

REPO = Path(__file__).resolve().parents[1]
TASK = ["negative", "neutral", "positive"]
MAP = {"POSITIVE": "positive", "NEGATIVE": "negative"}
TEXTS = {
    "positive": ["部屋が広くて快適でした", "朝食がとても美味しい", "スタッフが親切で満足", "景色が最高でした"],
    "neutral": ["駅から徒歩十分です", "チェックインは十五時", "部屋は二階でした", "駐車場があります"],
    "negative": ["部屋が狭くて残念", "朝食がまずい", "スタッフが不親切で不満", "騒音がひどかった"],
}


def band(threshold: float | None) -> LabelMapping:
    return LabelMapping(MAP, TASK, "neutral", threshold)


@pytest.mark.parametrize(
    "scores,threshold,expected",
    [
        ({"POSITIVE": 0.7, "NEGATIVE": 0.3}, 0.7, "positive"),  # exactly at the threshold: the mapped label
        ({"POSITIVE": 0.6999, "NEGATIVE": 0.3001}, 0.7, "neutral"),  # just below: neutral
        ({"POSITIVE": 0.3, "NEGATIVE": 0.7}, 0.7, "negative"),
        ({"POSITIVE": 0.31, "NEGATIVE": 0.69}, 0.7, "neutral"),
        ({"POSITIVE": 0.51, "NEGATIVE": 0.49}, 0.5, "positive"),  # 0.5 on two labels: an empty band
        ({"POSITIVE": 0.51, "NEGATIVE": 0.49}, None, "positive"),  # no threshold: no band
        ({"POSITIVE": 0.99, "NEGATIVE": 0.01}, 1.0, "neutral"),  # 1.0: everything is neutral
    ],
)
def test_neutral_band_edges(scores, threshold, expected):
    probabilities = band(threshold).probabilities([scores])
    assert TASK[int(probabilities.argmax())] == expected
    np.testing.assert_allclose(probabilities.sum(), 1.0)


def test_threshold_tuning_finds_the_band_that_separates_neutral():
    tops = [0.95, 0.9, 0.58, 0.55, 0.93, 0.6]
    scores = [{"POSITIVE": t, "NEGATIVE": 1 - t} for t in tops]
    gold = [2, 2, 1, 1, 2, 1]
    tuned, grid = band(None).tuned(scores, gold)
    assert 0.6 < tuned.threshold <= 0.9  # smallest separating candidate: the next top score above 0.6
    assert tuned.threshold == 0.9
    assert max(g["macro_f1"] for g in grid) == 1.0
    assert tuned.probabilities(scores).argmax(1).tolist() == gold


@pytest.mark.parametrize(
    "mapping,neutral,message",
    [
        ({"POSITIVE": "positive"}, "neutral", r"model labels without a task label: NEGATIVE"),
        ({**MAP, "MIXED": "neutral"}, None, r"not labels of the model: MIXED"),
        ({"POSITIVE": "good", "NEGATIVE": "negative"}, "neutral", r"not labels of the task: good"),
        (MAP, None, r"task labels nothing maps to: neutral"),
        (MAP, "meh", r"--pipeline-neutral-label 'meh' is not a task label"),
    ],
)
def test_maps_that_do_not_fit_name_both_label_sets(mapping, neutral, message):
    with pytest.raises(ConfigError, match=message) as info:
        LabelMapping.checked(mapping, ["NEGATIVE", "POSITIVE"], TASK, neutral)
    assert "Model labels: NEGATIVE, POSITIVE. Task labels: negative, neutral, positive." in str(info.value)


def test_label_map_syntax(tmp_path):
    assert parse_label_map("POSITIVE=positive, NEGATIVE=negative") == MAP
    path = tmp_path / "map.json"
    path.write_text(json.dumps(MAP), encoding="utf-8")
    assert parse_label_map(str(path)) == MAP
    with pytest.raises(ConfigError, match="MODEL_LABEL=TASK_LABEL"):
        parse_label_map("POSITIVE:positive")


@pytest.fixture(scope="module")
def sentiment_model(tmp_path_factory):
    """A tiny BertForSequenceClassification saved with id2label NEGATIVE/POSITIVE, as a hub model would be."""
    return save_sentiment_classifier(tmp_path_factory.mktemp("sentiment"), [t for ts in TEXTS.values() for t in ts])


def _task_file(path: Path) -> Path:
    rows = ["id\tlabel\tsplit\ttext"]
    for label, texts in TEXTS.items():
        for i, text in enumerate(texts):
            split = ("train", "validation", "test", "test")[i]
            rows.append(f"{label}{i}\t{label}\t{split}\t{text}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "recipes/lora_headlines.py"), "--task", "headlines",
           "--data", str(_task_file(tmp_path / "pn.tsv")), "--model", "pipeline",
           "--output-dir", str(tmp_path / "runs"), *extra]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_pipeline_run_applies_the_tuned_band(sentiment_model, tmp_path):
    done = _run(tmp_path, "--pipeline-model", str(sentiment_model), "--label-map",
                "POSITIVE=positive,NEGATIVE=negative", "--neutral-label", "neutral")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = next((tmp_path / "runs").iterdir())
    record = json.loads((run_dir / "model" / "label_mapping.json").read_text())
    assert record["tuning"]["n"] == 3 and record["neutral_threshold"] == record["tuning"]["threshold"]
    predictions = [json.loads(line) for line in (run_dir / "predictions.jsonl").open()]
    pipe = pipeline("text-classification", model=str(sentiment_model), device=-1)
    for p in predictions:
        scores = {o["label"]: o["score"] for o in pipe(p["text"], top_k=None)}
        top = max(scores, key=scores.get)
        expected = "neutral" if scores[top] < record["neutral_threshold"] else MAP[top]
        assert p["predicted"] == expected, p


@pytest.mark.slow
def test_pipeline_run_with_an_unmapped_label_stops_with_both_label_sets(sentiment_model, tmp_path):
    done = _run(tmp_path, "--pipeline-model", str(sentiment_model), "--label-map", "POSITIVE=positive")
    assert done.returncode == 2
    assert "model labels without a task label: NEGATIVE" in done.stderr
    assert "Task labels: negative, neutral, positive" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
