"""`--cloze-instruction` and the `prompt-instruction` countermeasure: the instruction is written first in every
cloze template and every in-context prompt (and a saved run prompts with it again); the countermeasure
addresses entity bias of a prompt-based run only, and `mikiwame countermeasures` scores the run's texts with
and without it, nothing trained."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from mikiwame.framework.config import RunConfig
from mikiwame.framework.countermeasures import Plan, Treatment, run_countermeasures
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.runner import run
from mikiwame.plugins.countermeasures.prompt_cures import CURE, DEFAULT_INSTRUCTION
from mikiwame.plugins.models.icl import IclSource
from mikiwame.plugins.models.tiny import build_vocabulary, japanese_tokenizer
from mikiwame.studies.pretraining import build_language_model

from . import tiny_lms
from .conftest import one_torch_thread, tiny_config

LABELS = sorted(tiny_lms.LABEL_WORDS)
ASKED = "固有名詞でなく内容で判断せよ。"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with one_torch_thread():
        yield


def random_lm(directory: Path, causal: bool) -> Path:
    """An untrained 2-layer LM with a vocabulary from the planted texts: what the prompt holds, not what it
    predicts, is under test."""
    train, _ = tiny_lms.train_and_held_out()
    words = [t for t, _ in train] + [ASKED, DEFAULT_INSTRUCTION, "見出し:分野:株価野球理由これはのニュースです"]
    tokenizer = japanese_tokenizer(build_vocabulary(words, 400))
    build_language_model(tokenizer, causal, 32, 2, 2, 128, seed=0).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def prompt_config(tmp_path: Path, model: str, lm: Path, **options) -> RunConfig:
    return tiny_config(
        tmp_path / "runs", task="headlines", data=str(tiny_lms.task_file(tmp_path / "task.tsv")), model=model,
        train_size=None, options={f"{model}_lm": str(lm), "prompts": str(tiny_lms.prompt_file(tmp_path / "p.json")),
                                  **options},
    )  # fmt: skip


def test_the_instruction_comes_first_in_every_in_context_prompt_and_again_when_saved(tmp_path):
    config = prompt_config(tmp_path, "icl", random_lm(tmp_path / "gpt", causal=True), icl_k=2, prompt_instruction=ASKED)
    data = build_plugin_set().tasks.get("headlines").load(config)
    classifier = IclSource().load(config, data)
    train = data.split("train")
    classifier.fit([e.text for e in train], [LABELS.index(e.label) for e in train])
    text = data.split("test")[0].text
    instruction = classifier.scorer.ids(ASKED)
    prompt = classifier.prompt(text)
    plain = IclSource().load(without_instruction(config), data)
    plain.fit([e.text for e in train], [LABELS.index(e.label) for e in train])
    assert instruction and prompt == instruction + plain.prompt(text)
    classifier.save(tmp_path / "saved")
    assert IclSource().load_saved(tmp_path / "saved").prompt(text) == prompt


def without_instruction(config: RunConfig) -> RunConfig:
    return dataclasses.replace(config, options={**config.options, "prompt_instruction": ""})


def test_the_countermeasure_addresses_entity_bias_of_prompt_runs_only():
    biased = {"swaps": {"flip_rate": {"low": 0.3}}, "non_entity_baseline": {"flip_rate": {"high": 0.1}}}
    fair = {"swaps": {"flip_rate": {"low": 0.0}}, "non_entity_baseline": {"flip_rate": {"high": 0.1}}}

    def results(model: str, **options) -> SimpleNamespace:
        return SimpleNamespace(config={"model": model, "options": options})

    assert [t.finding for t in CURE.targets(biased, results("cloze"))] == ["entity bias"]
    assert CURE.targets(biased, results("icl"))
    assert CURE.targets(fair, results("cloze")) == []  # the control: no bias, nothing to cure
    assert CURE.targets(biased, results("tiny")) == []  # a fine-tuned model has no prompt
    assert CURE.targets(biased, results("cloze", prompt_instruction=ASKED)) == []  # instructed already


def test_countermeasures_score_a_cloze_run_with_and_without_the_instruction(tmp_path):
    config = prompt_config(tmp_path, "cloze", random_lm(tmp_path / "bert", causal=False))
    plugins = build_plugin_set()
    done = run(config, plugins)
    (target,) = CURE.targets({"swaps": {"flip_rate": {"low": 1.0}}}, SimpleNamespace(config=config.to_dict()))
    saved = RunConfig.load(done / "config.json", plugins.option_types())
    treatment = Treatment(CURE, target, done / "countermeasures" / CURE.name / target.key)
    summary = run_countermeasures(Plan(done, saved, [42, 43], [treatment]), plugins)
    (row,) = summary["rows"]
    assert row["countermeasure"] == "prompt-instruction" and row["addresses"]["finding"] == "entity bias"
    assert row["target"]["metric"] == "entity-bias: swaps.flip_rate.rate" and row["target"]["n"] == 2
    root = done / "countermeasures"
    for side, first in (("baseline", ""), (row["runs"][0], DEFAULT_INSTRUCTION)):
        setup = json.loads(next((root / side).rglob("cloze.json")).read_text(encoding="utf-8"))
        assert all(t.startswith(first) for t in setup["templates"].values())
        assert bool(first) == all(t.startswith(DEFAULT_INSTRUCTION) for t in setup["templates"].values())
        assert not list((root / side).rglob("checkpoints/*"))  # scored, not trained
    assert (summary["trained"], summary["reused"]) == (4, 0)
