"""In-context learning: the continuation log-likelihood equals the model's own loss, demonstration selection
does what each strategy says, and on a tiny causal LM trained on a planted pattern every k and selection (and
chain of thought) recovers the planted label."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mikiwame.framework.errors import ConfigError
from mikiwame.plugins.models.icl import CausalLMScorer, DemonstrationPicker, IclClassifier, icl_grid
from mikiwame.plugins.models.prompting import load_language_model, load_prompt_spec
from mikiwame.plugins.models.tiny import build_vocabulary, japanese_tokenizer
from mikiwame.studies.pretraining import build_language_model

from . import tiny_lms
from .conftest import one_torch_thread

REPO = Path(__file__).resolve().parents[1]
LABELS = sorted(tiny_lms.LABEL_WORDS)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def random_gpt():
    train, _ = tiny_lms.train_and_held_out()
    tokenizer = japanese_tokenizer(build_vocabulary([t for t, _ in train] + ["見出し:分野:株価野球理由"], 300))
    model = build_language_model(tokenizer, True, 32, 2, 2, 128, seed=0).eval()
    return CausalLMScorer(model, tokenizer, batch_size=3)


def test_continuation_log_likelihood_matches_the_models_own_loss(random_gpt):
    scorer = random_gpt
    prompts = [scorer.ids("見出し:東京で今日の市場 分野:"), scorer.ids("大阪")]
    continuations = [scorer.ids("株価"), scorer.ids("野球の選手")]
    got = scorer.continuation_log_probs(prompts, continuations)  # batches of 3 mix lengths and padding
    for i, p in enumerate(prompts):
        for j, c in enumerate(continuations):
            ids = torch.tensor([scorer.start + p + c])
            labels = ids.clone()
            labels[0, : len(scorer.start) + len(p)] = -100
            with torch.no_grad():
                loss = scorer.model(input_ids=ids, labels=labels).loss.item()
            assert got[i, j] == pytest.approx(-loss * len(c), rel=1e-4)


def test_balanced_selection_takes_labels_in_turn_and_never_the_text_itself():
    texts = ["a1", "a2", "a3", "b1", "b2", "b3"]
    picker = DemonstrationPicker(texts, [0, 0, 0, 1, 1, 1], "balanced", seed=0)
    chosen = picker.pick("a1", 4)
    assert sorted(picker.labels[chosen].tolist()) == [0, 0, 1, 1]
    assert 0 not in chosen
    assert len(picker.pick("a1", 10)) == 5


def test_similar_selection_picks_the_nearest_texts_and_the_seed_only_reorders():
    texts = ["東京で市場が上昇", "東京で市場が下落", "野球の選手が優勝", "サッカーの試合"]
    one = DemonstrationPicker(texts, [0, 0, 1, 1], "similar", seed=0)
    two = DemonstrationPicker(texts, [0, 0, 1, 1], "similar", seed=5)
    assert sorted(one.pick("東京で市場が急騰", 2)) == [0, 1]
    orders = {
        tuple(DemonstrationPicker(texts, [0, 0, 1, 1], "similar", seed=s).pick("東京で市場", 3)) for s in range(8)
    }
    assert len(orders) > 1 and {frozenset(o) for o in orders} == {frozenset(two.pick("東京で市場", 3))}


def test_random_selection_is_seeded():
    texts = [f"t{i}" for i in range(20)]
    labels = [i % 2 for i in range(20)]
    a = DemonstrationPicker(texts, labels, "random", seed=1).pick("q", 4)
    assert a == DemonstrationPicker(texts, labels, "random", seed=1).pick("q", 4)
    assert a != DemonstrationPicker(texts, labels, "random", seed=2).pick("q", 4)


def test_unknown_selection_is_a_clear_error():
    with pytest.raises(ConfigError, match="use one of random, balanced, similar"):
        DemonstrationPicker([], [], "nearest", 0)


def test_grid_has_one_zero_shot_row_and_a_row_per_k_and_selection(random_gpt, tmp_path):
    spec = load_prompt_spec(tiny_lms.prompt_file(tmp_path / "p.json"), "t", LABELS)
    train, held = tiny_lms.train_and_held_out()
    xy = lambda pairs: ([t for t, _ in pairs], [LABELS.index(y) for _, y in pairs])  # noqa: E731
    cells = icl_grid(random_gpt, spec, "random", xy(train), xy(held[:4]), [0, 2], ["random", "similar"], [0, 1])
    assert [(c.k, c.selection, len(c.accuracies)) for c in cells] == [
        (0, "none", 1),
        (2, "random", 2),
        (2, "similar", 2),
    ]
    assert cells[1].to_dict()["accuracy_pooled"]["n"] == 8


@pytest.fixture(scope="module")
def planted_gpt(tmp_path_factory):
    return tiny_lms.causal_lm(tmp_path_factory.mktemp("gpt"))


@pytest.mark.slow
@pytest.mark.parametrize("k,selection,cot", [(0, "random", 0), (1, "random", 0), (2, "balanced", 0),
                                             (2, "similar", 0), (1, "balanced", 4)])  # fmt: skip
def test_icl_recovers_the_planted_label(planted_gpt, tmp_path, k, selection, cot):
    spec = load_prompt_spec(tiny_lms.prompt_file(tmp_path / "p.json"), "t", LABELS)
    model, tokenizer = load_language_model(str(planted_gpt), "causal", "--icl-lm")
    classifier = IclClassifier(CausalLMScorer(model, tokenizer), spec, "planted", k, selection, seed=0, cot_tokens=cot)
    train, held = tiny_lms.train_and_held_out()
    classifier.fit([t for t, _ in train], [LABELS.index(y) for _, y in train])
    probabilities = classifier.predict_proba([t for t, _ in held])
    np.testing.assert_allclose(probabilities.sum(1), 1.0)
    assert probabilities.argmax(1).tolist() == [LABELS.index(y) for _, y in held]
    assert len(classifier.reasonings) == (len(held) if cot else 0)


@pytest.mark.slow
def test_icl_run_through_the_recipe(planted_gpt, tmp_path):
    data = tiny_lms.task_file(tmp_path / "task.tsv")
    prompts = tiny_lms.prompt_file(tmp_path / "p.json")
    cmd = [sys.executable, str(REPO / "recipes/lora_headlines.py"), "--task", "headlines", "--data", str(data),
           "--model", "icl", "--icl-lm", str(planted_gpt), "--icl-k", "1", "--prompts", str(prompts),
           "--output-dir", str(tmp_path / "runs")]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = next((tmp_path / "runs").iterdir())
    assert json.loads((run_dir / "metrics.json").read_text())["after"]["test"]["accuracy"]["value"] == 1.0
    assert json.loads((run_dir / "model" / "icl.json").read_text())["k"] == 1
