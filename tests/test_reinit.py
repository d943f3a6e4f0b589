"""`--reinit-layers K` (Zhang et al. 2021): the top K encoder layers and the pooler get fresh weights before
fine-tuning, the layers below, the embeddings and the head keep theirs, also for weights loaded from a saved
model (transformers marks those as initialised); a method that freezes them is refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from mikiwame.framework import hookimpl
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.runner import run
from mikiwame.plugins.countermeasures.reinit import reinitialise_top_layers

from .conftest import one_torch_thread, tiny_config


def saved_and_loaded(directory) -> BertForSequenceClassification:
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=64, num_labels=2)  # fmt: skip
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(directory)
    return BertForSequenceClassification.from_pretrained(directory)


def changed(before: dict[str, torch.Tensor], after: torch.nn.Module | dict[str, torch.Tensor]) -> set[str]:
    """The parts (`bert.encoder.layer.2`, `bert.pooler`, ...) whose weights differ between the two."""
    after = after if isinstance(after, dict) else after.state_dict()
    return {
        ".".join(k.split(".")[: 4 if ".layer." in k else 2]) for k in before if not torch.equal(before[k], after[k])
    }


def test_the_top_layers_and_the_pooler_change_and_nothing_else(tmp_path):
    model = saved_and_loaded(tmp_path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert reinitialise_top_layers(model, 1, seed=7) == ["layer 2", "pooler"]
    assert changed(before, model) == {"bert.encoder.layer.2", "bert.pooler"}
    again = saved_and_loaded(tmp_path)
    reinitialise_top_layers(again, 1, seed=7)
    assert changed(model.state_dict(), again) == set()  # the same seed draws the same weights
    reinitialise_top_layers(again, 2, seed=7)
    assert changed(before, again) == {"bert.encoder.layer.1", "bert.encoder.layer.2", "bert.pooler"}


def test_too_many_layers_or_frozen_layers_are_refused(tmp_path):
    model = saved_and_loaded(tmp_path)
    with pytest.raises(ConfigError, match="has 3 layers"):
        reinitialise_top_layers(model, 4, seed=0)
    model.bert.encoder.layer[2].requires_grad_(False)
    with pytest.raises(ConfigError, match="--peft full"):
        reinitialise_top_layers(model, 1, seed=0)


class Snapshot:
    """A copy of the model's weights at `before_train`, taken before (`first`) or after the other plugins'."""

    def __init__(self, first: bool) -> None:
        self.weights: dict[str, torch.Tensor] = {}

        def take(run) -> None:
            self.weights = {k: v.clone() for k, v in run.model.state_dict().items()}

        self.mikiwame_before_train = hookimpl(tryfirst=first, trylast=not first)(take)


def test_a_run_with_the_option_reinitialises_before_training(tmp_path):
    first, last = Snapshot(first=True), Snapshot(first=False)
    plugins = build_plugin_set(extra=[("first", first), ("last", last)])
    with one_torch_thread():
        run(tiny_config(tmp_path, epochs=1, train_size=24, options={"reinit_layers": 1}), plugins)
    assert changed(first.weights, last.weights) == {"bert.encoder.layer.1", "bert.pooler"}


def test_the_reinit_countermeasure_addresses_over_fitting_of_full_fine_tuning_runs_only():
    cure = build_plugin_set().countermeasures.get("reinit")
    overfits = {"runs": [{"diagnosis": {"overfitting": True}}]}

    def results(method: str) -> SimpleNamespace:
        return SimpleNamespace(config=tiny_config("runs").to_dict(), metrics={"model": {"peft": method}})

    assert [t.finding for t in cure.targets(overfits, results("full"))] == ["over-fitting"]
    assert cure.targets(overfits, results("lora")) == []  # the layers it would re-initialise stay frozen
    assert cure.targets({"runs": [{"diagnosis": {"overfitting": False}}]}, results("full")) == []  # control
    assert cure.apply(tiny_config("runs"), None).options["reinit_layers"] == 2
