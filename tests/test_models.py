"""Model sources: local directories through the real from_pretrained path, the offline check, the
model-information table, and trackers."""

from __future__ import annotations

import importlib.util
import json

import pytest

from mikiwame.framework import models
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.runner import run

from .conftest import tiny_config


def test_hf_hub_offline_means_unreachable_without_a_probe(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models.hub_reachable.cache_clear()
    monkeypatch.setattr(models.socket, "create_connection", lambda *a, **k: pytest.fail("probed"))
    assert models.hub_reachable() is False
    models.hub_reachable.cache_clear()


def test_a_local_model_directory_loads_as_pretrained_and_gets_lora_by_default(tmp_path, finished_run):
    model_dir = finished_run / "model"  # a plain transformers model with its tokenizer
    done = run(tiny_config(tmp_path, model=str(model_dir), peft="auto", epochs=1, lr=1e-3))
    info = json.loads((done / "model_info.json").read_text())
    assert info["source"] == "transformers" and info["pretrained"] is True and info["fallback"] is False
    assert info["peft"] == "lora" and info["parameters_trainable"] < info["parameters_total"]
    assert info["tokenizer"] == "BertJapaneseTokenizer" and info["layers"] == 2


def test_known_hub_models_are_described_with_their_pretraining_data(finished_run, tmp_path):
    ps = build_plugin_set()
    config = tiny_config(tmp_path)
    data = ps.tasks.get("headlines").load(config)
    loaded = ps.models.get("tiny").load(config, data)
    loaded.name, loaded.pretrained = "cl-tohoku/bert-base-japanese-v3", True
    info = models.describe_model(loaded, loaded.model, "lora")
    assert "CC-100" in info["pretraining_data"] and "Wikipedia" in info["pretraining_data"]
    assert info["vocabulary"] == len(loaded.tokenizer.vocab) and info["heads"] == 2


def test_an_unknown_tracker_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not an Accelerate tracker"):
        run(tiny_config(tmp_path, report_to=["notatracker"]))


def test_report_to_tensorboard_logs_or_says_what_to_install(tmp_path):
    config = tiny_config(tmp_path, report_to=["tensorboard"], epochs=1)
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(ConfigError, match="pip install tensorboard"):
            run(config)
    else:
        run(config)
        (finished,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
        assert list((finished / "logs" / "mikiwame").glob("events.out.tfevents.*"))  # tensorboard --logdir runs/
