"""Model sources: local directories through the real from_pretrained path, the offline check, the
model-information table, and trackers."""

from __future__ import annotations

import importlib.util
import json
import logging
import warnings

import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from mikiwame.framework import models
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.runner import run
from mikiwame.plugins.models.transformers import new_weights

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


def test_a_head_the_checkpoint_lacks_is_said_in_the_model_table_not_in_a_load_report(tmp_path, finished_run, capfd):
    """A pre-trained encoder saved without a classification head (what a hub BERT is): transformers prints its
    load report and peft a deprecation notice; mikiwame says it once, in its model table."""
    encoder = tmp_path / "encoder"
    AutoModelForSequenceClassification.from_pretrained(finished_run / "model").bert.save_pretrained(encoder)
    AutoTokenizer.from_pretrained(finished_run / "model").save_pretrained(encoder)
    capfd.readouterr()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("transformers").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            done = run(tiny_config(tmp_path / "runs", model=str(encoder), peft="lora", epochs=1, lr=1e-3))
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    out, _ = capfd.readouterr()
    info = json.loads((done / "model_info.json").read_text())
    new = "classifier.bias, classifier.weight (not in the checkpoint): initialised at random"
    assert info["new_weights"] == new and "new weights" in out
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []
    assert [str(w.message) for w in caught if issubclass(w.category, FutureWarning)] == []
    headed = run(tiny_config(tmp_path / "headed", model=str(finished_run / "model"), peft="lora", epochs=1))
    assert "new_weights" not in json.loads((headed / "model_info.json").read_text()), "the control has its head"


def test_a_head_for_another_number_of_labels_is_listed_with_each_shape():
    loading = {
        "missing_keys": [],
        "mismatched_keys": [("classifier.weight", (2, 8), (6, 8)), ("classifier.bias", (2,), (6,))],
    }
    assert new_weights(loading) == (
        "classifier.bias [2] there, [6] here, classifier.weight [2, 8] there, [6, 8] here (another shape in the "
        "checkpoint): initialised at random"
    )
    assert new_weights({"missing_keys": [], "mismatched_keys": []}) is None


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
