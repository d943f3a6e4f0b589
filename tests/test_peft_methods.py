"""Every PEFT-method plugin on a planted, easily separable 4-class task: it learns (test accuracy >= 0.9), it
leaves every frozen base weight bit-identical, and its saved run reloads to the same predictions.

Soft prompts, adapters and linear probes cannot carry a task on a *random* frozen encoder, so the fixture
gives them a base briefly pre-trained with masked LM on the planted texts (`DataCollatorForLanguageModeling`,
hidden 64, 2 layers, a few seconds, built once per session). Each planted text holds three keywords of its class
among shared filler words, so masked-LM learns which keywords belong together."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    DataCollatorForLanguageModeling,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    LlamaConfig,
    LlamaForSequenceClassification,
)

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import PeftError
from mikiwame.framework.models import LoadedModel, ModelSource
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.predict import RunPredictor
from mikiwame.framework.results import RunResults
from mikiwame.framework.runner import run
from mikiwame.framework.task import Example, TaskData
from mikiwame.plugins.models.tiny import build_vocabulary, japanese_tokenizer
from mikiwame.plugins.peft.support import load_base_classifier

from .conftest import one_torch_thread

KEYWORDS = {
    "culture": ["映画", "音楽", "小説", "俳優", "歌手", "美術"],
    "economy": ["株価", "為替", "金利", "銀行", "景気", "市場"],
    "sports": ["野球", "サッカー", "選手", "試合", "優勝", "監督"],
    "weather": ["台風", "地震", "大雨", "気温", "警報", "積雪"],
}
FILLERS = ["今日", "昨日", "東京", "大阪", "ニュース", "発表", "関係", "問題", "速報", "報道", "話題", "地域"]
SPLIT_SIZES = {"train": 48, "validation": 12, "test": 25}
METHODS = ["lora", "dora", "ia3", "prompt-tuning", "prefix-tuning", "adapter", "bitfit", "head-only", "full"]
MAX_LENGTH = 32


def planted_examples(seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    examples = []
    for split, per_label in SPLIT_SIZES.items():
        for label, words in KEYWORDS.items():
            for i in range(per_label):
                tokens = rng.sample(words, 3) + rng.sample(FILLERS, 2)
                rng.shuffle(tokens)
                examples.append(Example(f"{split}-{label}-{i}", "、".join(tokens), label, split))
    return examples


class PlantedTask:
    name = "planted"
    description = "4 labels, two class keywords per text among shared fillers"

    def load(self, config: RunConfig) -> TaskData:
        return TaskData(self.name, planted_examples(), "planted")


class PlantedBase(ModelSource):
    """The masked-LM pre-trained base as a model source; keeps the model it handed out, so a test can look
    at the very weights the run trained."""

    name = "planted-mlm"
    description = "tiny BERT pre-trained with masked LM on the planted texts"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.snapshot: dict[str, torch.Tensor] = {}
        self.model: torch.nn.Module | None = None

    def load(self, config: RunConfig, task: TaskData) -> LoadedModel:
        self.model = BertForSequenceClassification.from_pretrained(
            self.directory, num_labels=len(task.labels), id2label=dict(enumerate(task.labels)), label2id=task.label2id
        )
        self.snapshot = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        tokenizer = japanese_tokenizer(build_vocabulary([e.text for e in planted_examples()], 1000))
        return LoadedModel(self.model, tokenizer, name=str(self.directory), source=self.name, pretrained=False)


class PlantedPlugin:
    def __init__(self, base: PlantedBase) -> None:
        self.base = base

    @hookimpl
    def mikiwame_register_tasks(self, register):
        register(PlantedTask())

    @hookimpl
    def mikiwame_register_models(self, register):
        register(self.base)


@pytest.fixture(autouse=True)
def single_threaded():
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def mlm_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few seconds of masked-LM pre-training on the planted texts (all splits, labels unused)."""
    torch.manual_seed(0)
    texts = [e.text for e in planted_examples()]
    tokenizer = japanese_tokenizer(build_vocabulary(texts, 1000))
    config = BertConfig(
        vocab_size=len(tokenizer.vocab),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=64,
    )
    model = BertForMaskedLM(config)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.2)
    encoded = [{"input_ids": ids} for ids in tokenizer(texts)["input_ids"]]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    with one_torch_thread():
        for epoch in range(25):
            random.Random(epoch).shuffle(encoded)
            for i in range(0, len(encoded), 32):
                loss = model(**collator(encoded[i : i + 32])).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
    directory = tmp_path_factory.mktemp("mlm-base")
    model.save_pretrained(directory)
    return directory


def train_planted(method: str, mlm_base: Path, output: Path) -> tuple[Path, PlantedBase, object]:
    base = PlantedBase(mlm_base)
    plugins = build_plugin_set(extra=[("planted", PlantedPlugin(base))])
    config = RunConfig(
        task="planted",
        model="planted-mlm",
        peft=method,
        epochs=10,
        batch_size=16,
        max_length=MAX_LENGTH,
        patience=0,
        seed=0,
        output_dir=str(output),
        options={"num_virtual_tokens": 8},
    )
    return run(config, plugins), base, plugins


@pytest.fixture(scope="session")
def trained(mlm_base: Path, tmp_path_factory: pytest.TempPathFactory):
    """One training per method, shared by the tests below (each a few seconds on 2 cores)."""
    cache: dict[str, tuple[Path, PlantedBase, object]] = {}

    def get(method: str) -> tuple[Path, PlantedBase, object]:
        if method not in cache:
            cache[method] = train_planted(method, mlm_base, tmp_path_factory.mktemp(method))
        return cache[method]

    return get


def canonical(name: str) -> str:
    """A parameter's name in the base before PEFT wrapped its layers (the wrapped original keeps its weights
    under base_layer / original_module)."""
    return name.replace(".base_layer.", ".").replace(".original_module.", ".")


@pytest.mark.parametrize("method", METHODS)
def test_method_learns_the_planted_task(method, trained):
    run_dir, _, _ = trained(method)
    after = RunResults.load(run_dir).metrics["after"]["test"]
    assert after["accuracy"]["value"] >= 0.9, f"{method}: {after['accuracy']}"


@pytest.mark.parametrize("method", [m for m in METHODS if m != "full"])
def test_frozen_base_weights_stay_bit_identical(method, trained):
    _, base, _ = trained(method)
    trainable = {canonical(n) for n, p in base.model.named_parameters() if p.requires_grad}
    frozen = {canonical(n): p for n, p in base.model.named_parameters() if not p.requires_grad}
    changed = [n for n, p in frozen.items() if n in base.snapshot and not torch.equal(p.cpu(), base.snapshot[n])]
    assert not changed, f"{method} changed frozen weights: {changed[:5]}"
    unaccounted = set(base.snapshot) - set(frozen) - trainable
    assert not unaccounted, f"{method}: base weights neither frozen-and-checked nor trainable: {unaccounted}"
    assert len(frozen) > len(trainable), f"{method} trains most of the base; it is not parameter-efficient"


@pytest.mark.parametrize("method", METHODS)
def test_saved_run_reloads_to_identical_predictions(method, trained):
    run_dir, _, plugins = trained(method)
    info = RunResults.load(run_dir).model_info
    assert 0 < info["parameters_trainable"] <= info["parameters_total"]
    assert info["saved_bytes"] > 0
    predictor = RunPredictor(run_dir, plugins)
    saved = [r for r in _jsonl(run_dir / "predictions.jsonl") if r["split"] == "test"]
    again = predictor.probabilities([r["text"] for r in saved]).numpy()
    expected = np.array([[r["probabilities"][label] for label in predictor.labels] for r in saved])
    np.testing.assert_allclose(again, expected, atol=1e-5)


def test_adapters_save_kilobytes_not_the_base(trained):
    adapter, _, _ = trained("adapter")
    full, _, _ = trained("full")
    saved = RunResults.load(adapter).model_info["saved_bytes"]
    assert saved < RunResults.load(full).model_info["saved_bytes"] / 3


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------- save/load at the plugin level


@pytest.mark.parametrize("method", [m for m in METHODS if m != "full"])
def test_save_load_gives_identical_logits(method, mlm_base, tmp_path):
    """Trainable tensors are randomised first, so a save that drops any of them shows as a logit change."""
    plugins = build_plugin_set()
    plugin = plugins.peft_methods.get(method)
    labels = ["a", "b", "c", "d"]
    base_dir = tmp_path / "base"
    BertForSequenceClassification.from_pretrained(mlm_base, num_labels=4).save_pretrained(base_dir)
    config = RunConfig(max_length=MAX_LENGTH, options={"num_virtual_tokens": 8})
    model = plugin.apply(load_base_classifier(str(base_dir), labels), config)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    plugin.save(model, tmp_path / "saved")
    loaded = plugin.load(tmp_path / "saved", str(base_dir), labels)
    ids = torch.randint(5, 60, (3, 12))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    model.eval(), loaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- refusals, never silent no-ops


def _distilbert() -> torch.nn.Module:
    config = DistilBertConfig(vocab_size=50, dim=32, n_layers=2, n_heads=2, hidden_dim=64, num_labels=2)
    return DistilBertForSequenceClassification(config)


@pytest.mark.parametrize("method", ["prompt-tuning", "prefix-tuning"])
def test_soft_prompts_refuse_when_positions_run_out(method, mlm_base):
    plugin = build_plugin_set().peft_methods.get(method)
    model = BertForSequenceClassification.from_pretrained(mlm_base, num_labels=4)  # 64 positions
    config = RunConfig(max_length=60, options={"num_virtual_tokens": 8})
    with pytest.raises(PeftError, match=r"--max-length 60 \+ 8 virtual tokens = 68 positions, but the model has 64"):
        plugin.apply(model, config)
    plugin.apply(model, RunConfig(max_length=56, options={"num_virtual_tokens": 8}))


def test_adapter_refuses_a_model_without_bert_blocks():
    with pytest.raises(PeftError, match="bottleneck adapters need BERT-style blocks"):
        build_plugin_set().peft_methods.get("adapter").apply(_distilbert(), RunConfig())


def test_ia3_refuses_an_architecture_without_targets():
    with pytest.raises(PeftError, match="IA3 has no target modules for model type 'distilbert'"):
        build_plugin_set().peft_methods.get("ia3").apply(_distilbert(), RunConfig())


def test_bitfit_refuses_a_model_without_biases():
    config = LlamaConfig(
        vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_labels=2
    )
    model = LlamaForSequenceClassification(config)
    with pytest.raises(PeftError, match="has no bias terms"):
        build_plugin_set().peft_methods.get("bitfit").apply(model, RunConfig())
