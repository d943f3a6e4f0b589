"""The cloze scorer: exact chain-rule scores on a stub masked LM whose probabilities are set by hand, calibration
by content-free inputs, prompt-file errors, and the planted pattern on a tiny trained masked LM."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from rich.console import Console

from mikiwame.framework.cli import main as cli_main
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.runner import transform_data
from mikiwame.framework.task import Example, TaskData
from mikiwame.plugins.models.cloze import ClozeClassifier, MaskedLMScorer, calibrate, label_probabilities
from mikiwame.plugins.models.prompting import PromptSpec, load_language_model, load_prompt_spec, scored_in_batches
from mikiwame.plugins.models.tiny import SPECIAL_TOKENS, japanese_tokenizer

from . import tiny_lms
from .analyzers.conftest import assert_findings_rules, saved_findings
from .conftest import one_torch_thread, tiny_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with one_torch_thread():
        yield


class StubMaskedLM(torch.nn.Module):
    """At a slot right after ペン the distribution is `after_pen`; at any other slot it is `first`."""

    def __init__(self, vocab_size: int, pen: int, first: dict[int, float], after_pen: dict[int, float]) -> None:
        super().__init__()
        self.vocab_size, self.pen = vocab_size, pen
        self.first, self.after_pen = self._dist(first), self._dist(after_pen)

    def _dist(self, probs: dict[int, float]) -> torch.Tensor:
        rest = (1 - sum(probs.values())) / (self.vocab_size - len(probs))
        d = torch.full((self.vocab_size,), rest)
        for i, p in probs.items():
            d[i] = p
        return d.log()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        previous = torch.roll(input_ids, 1, dims=1)
        after = (previous == self.pen).unsqueeze(-1)
        return SimpleNamespace(logits=torch.where(after, self.after_pen, self.first))


@pytest.fixture(scope="module")
def stub():
    tokenizer = japanese_tokenizer(SPECIAL_TOKENS + ["ペン", "##ギン", "鳥", "「", "」", "は", "。", "雨"])
    pen, gin, bird = (tokenizer.convert_tokens_to_ids(t) for t in ("ペン", "##ギン", "鳥"))
    model = StubMaskedLM(len(tokenizer), pen, first={pen: 0.6, bird: 0.3}, after_pen={gin: 0.1})
    return MaskedLMScorer(model, tokenizer), tokenizer


def test_multi_piece_word_is_scored_by_its_whole_piece_sequence(stub):
    scorer, tokenizer = stub
    assert tokenizer.tokenize("ペンギン") == ["ペン", "##ギン"]  # one MeCab word, two WordPiece pieces
    scores = scorer.word_log_probs(["雨"], "「{text}」は[MASK]。", ["ペンギン", "鳥"])
    np.testing.assert_allclose(scores[0], [math.log(0.6) + math.log(0.1), math.log(0.3)], rtol=1e-5)
    spec = PromptSpec("stub", {"t": "「{text}」は[MASK]。"}, {"penguin": ["ペンギン"], "bird": ["鳥"]})
    probabilities = label_probabilities(scorer, spec, ["雨"], "「{text}」は[MASK]。")
    assert probabilities.argmax() == 1  # bird: 0.3 > 0.6 x 0.1, though ペン (0.6) beats 鳥 (0.3) as a first piece
    np.testing.assert_allclose(probabilities[0], [0.06 / 0.36, 0.3 / 0.36], rtol=1e-5)


def test_mean_piece_score_divides_by_the_number_of_pieces(stub):
    scorer, _ = stub
    scores = scorer.word_log_probs(["雨"], "{text}は[MASK]", ["ペンギン", "鳥"], mean=True)
    np.testing.assert_allclose(scores[0], [(math.log(0.6) + math.log(0.1)) / 2, math.log(0.3)], rtol=1e-5)


def test_label_with_several_words_gets_their_total_probability(stub):
    scorer, _ = stub
    spec = PromptSpec("stub", {"t": "{text}は[MASK]"}, {"animal": ["ペンギン", "鳥"], "pen": ["ペン"]})
    probabilities = label_probabilities(scorer, spec, ["雨"], "{text}は[MASK]")
    np.testing.assert_allclose(probabilities[0], [0.36 / 0.96, 0.6 / 0.96], rtol=1e-5)


def test_content_free_calibration_divides_out_the_prior():
    p = np.asarray([[0.6, 0.4], [0.75, 0.25]])
    calibrated = calibrate(p, np.asarray([0.75, 0.25]))
    np.testing.assert_allclose(calibrated[0], [1 / 3, 2 / 3])
    np.testing.assert_allclose(calibrated[1], [0.5, 0.5])  # the content-free answer itself becomes uniform
    np.testing.assert_allclose(calibrate(p, np.asarray([0.5, 0.5])), p)  # a flat prior changes nothing


def test_prompt_file_must_cover_every_task_label(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"templates": {"a": "{text}[MASK]"}, "verbalizers": {"x": ["猫"]}}), "utf-8")
    with pytest.raises(ConfigError, match=r"missing: y.*Task labels: x, y"):
        load_prompt_spec(path, "t", ["x", "y"])
    path.write_text(json.dumps({"templates": {"a": "{text}"}, "verbalizers": {"x": ["猫"]}}), "utf-8")
    with pytest.raises(ConfigError, match=r"template 'a' must contain"):
        load_prompt_spec(path, "t", ["x"])


def test_shipped_prompt_files_fit_their_tasks():
    headlines = ["economy", "entertainment", "international", "politics", "sports", "technology"]
    assert len(load_prompt_spec(None, "headlines", headlines).templates) >= 2
    assert load_prompt_spec(None, "jrte-pn", ["negative", "neutral", "positive"]).verbalizers["neutral"]


@pytest.fixture(scope="module")
def planted_mlm(tmp_path_factory):
    return tiny_lms.masked_lm(tmp_path_factory.mktemp("mlm"))


@pytest.mark.slow
def test_cloze_recovers_the_planted_label(planted_mlm, tmp_path):
    spec = load_prompt_spec(tiny_lms.prompt_file(tmp_path / "p.json"), "t", sorted(tiny_lms.LABEL_WORDS))
    model, tokenizer = load_language_model(str(planted_mlm), "masked", "--cloze-lm")
    classifier = ClozeClassifier(MaskedLMScorer(model, tokenizer), spec, "planted", "planted", calibrated=False)
    _, held = tiny_lms.train_and_held_out()
    gold = [sorted(tiny_lms.LABEL_WORDS).index(y) for _, y in held]
    assert classifier.predict_proba([t for t, _ in held]).argmax(1).tolist() == gold
    shuffled = [(t.replace("市場", "@").replace("選手", "市場").replace("@", "選手"), y) for t, y in held]
    assert classifier.predict_proba([t for t, _ in shuffled]).argmax(1).tolist() == [1 - g for g in gold]


@pytest.mark.slow
def test_cloze_run_compares_every_template_raw_and_calibrated(planted_mlm, tmp_path, capsys):
    data = tiny_lms.task_file(tmp_path / "task.tsv")
    prompts = tiny_lms.prompt_file(tmp_path / "p.json")
    cmd = [sys.executable, str(REPO / "recipes/lora_headlines.py"), "--task", "headlines", "--data", str(data),
           "--model", "cloze", "--cloze-lm", str(planted_mlm), "--prompts", str(prompts),
           "--output-dir", str(tmp_path / "runs")]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = next((tmp_path / "runs").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["after"]["test"]["accuracy"]["value"] == 1.0
    capsys.readouterr()
    assert cli_main(["report", str(run_dir), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["sections"]["cloze_templates"]["data"]
    assert {(r["split"], r["template"], r["calibrated"]) for r in rows} == {
        (s, t, c) for s in ("validation", "test") for t in ("planted", "unrelated") for c in (False, True)
    }
    planted = [r for r in rows if r["template"] == "planted" and not r["calibrated"] and r["split"] == "test"]
    held_out_test = len(tiny_lms.train_and_held_out()[1][::2])
    assert planted[0]["accuracy"]["value"] == 1.0 and planted[0]["accuracy"]["n"] == held_out_test
    setup = json.loads((run_dir / "model" / "cloze.json").read_text())
    assert set(setup["content_free_probabilities"]) == {"planted", "unrelated"}
    findings = saved_findings(run_dir)  # a prompting run's findings (考察) keep the two rules too
    assert_findings_rules(findings)
    assert any(f.kind == "fact" and f.source == "run" and "above" in f.claim["en"] for f in findings)


def held_out_task(per_split: int = 30) -> TaskData:
    """Three labels, each split `per_split` texts (a third of each label)."""
    examples = [
        Example(f"{split}-{i}", f"{split}の文{i}", ("a", "b", "c")[i % 3], split)
        for split in ("train", "validation", "test")
        for i in range(per_split)
    ]
    return TaskData("t", examples, "memory")


@pytest.mark.parametrize("model", ["cloze", "icl"])
def test_prompting_max_eval_caps_the_held_out_splits_stratified_and_seeded(tmp_path, model):
    data, plugins = held_out_task(), build_plugin_set()
    capped = transform_data(plugins, tiny_config(tmp_path, model=model, prompting_max_eval=9), data)
    assert [len(capped.split(s)) for s in ("train", "validation", "test")] == [30, 9, 9]
    assert sorted(e.label for e in capped.split("test")) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    again = transform_data(plugins, tiny_config(tmp_path, model=model, prompting_max_eval=9), data)
    assert [e.id for e in again.examples] == [e.id for e in capped.examples]  # seeded
    control = transform_data(plugins, tiny_config(tmp_path, model="tiny", prompting_max_eval=9), data)
    assert control.examples == data.examples  # other models ignore the option
    with pytest.raises(ConfigError, match="--cloze-max-eval"):
        transform_data(plugins, tiny_config(tmp_path, model=model, prompting_max_eval=0), data)


def test_prompt_scoring_shows_progress_on_a_terminal():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    assert list(scored_in_batches(10, 4, "cloze: scoring prompts", console)) == [0, 4, 8]
    assert "cloze: scoring prompts" in out.getvalue() and "10/10" in out.getvalue()
