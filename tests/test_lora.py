"""LoRA: targets validated against the model's real module names; only adapters and the head train; the
saved adapter and the merged export predict like the trained model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from mikiwame.framework.errors import PeftError
from mikiwame.framework.plugins import build_plugin_set
from mikiwame.framework.predict import RunPredictor
from mikiwame.framework.runner import run

from .conftest import run_recipe, tiny_config


def test_a_target_matching_no_module_stops_with_the_names_that_exist(tmp_path):
    with pytest.raises(PeftError, match=r"(?s)LoRA target 'querry' matches no module.*attention\.self\.query"):
        run(tiny_config(tmp_path, peft="lora", lora_targets=["querry"]))
    assert not any(tmp_path.iterdir())


def test_a_target_matching_only_some_layers_is_refused(tmp_path):
    with pytest.raises(PeftError, match=r"matches only 1 of 2 layers \(missing layers \[1\]\)"):
        run(tiny_config(tmp_path, peft="lora", lora_targets=["layer.0.attention.self.query"]))


def test_a_container_module_is_refused(tmp_path):
    with pytest.raises(PeftError, match=r"which LoRA cannot adapt"):
        run(tiny_config(tmp_path, peft="lora", lora_targets=["attention"]))


def test_target_error_through_the_recipe_is_one_clear_message(tmp_path):
    done = run_recipe(
        "--model",
        "tiny",
        "--peft",
        "lora",
        "--lora-targets",
        "qkv",
        "--output-dir",
        str(tmp_path),
        "--train-size",
        "60",
        "--epochs",
        "1",
    )
    assert done.returncode == 2
    assert "mikiwame: error: --lora-targets: LoRA target 'qkv' matches no module" in done.stderr
    assert "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())


def test_lora_trains_only_adapters_and_head_and_leaves_the_base_bit_identical(lora_run):
    info = json.loads((lora_run / "model_info.json").read_text())
    assert info["peft"] == "lora"
    assert 0 < info["parameters_trainable"] < info["parameters_total"] / 4
    base = load_file(lora_run / "base_model" / "model.safetensors")
    predictor = RunPredictor(lora_run, build_plugin_set())
    trained = {n: p for n, p in predictor.model.named_parameters()}
    frozen = [n for n in trained if "lora_" not in n and "classifier" not in n]
    assert frozen
    for name in frozen:
        key = name.replace("base_model.model.", "").replace(".base_layer", "")
        assert torch.equal(trained[name].cpu(), base[key]), name
    metrics = json.loads((lora_run / "metrics.json").read_text())
    assert metrics["model"]["peft"] == "lora"


def test_saved_adapter_and_merged_export_predict_like_the_run(lora_run):
    predictor = RunPredictor(lora_run, build_plugin_set())
    rows = [json.loads(line) for line in (lora_run / "predictions.jsonl").open()]
    texts = [r["text"] for r in rows if r["split"] == "test"]
    adapter_probs = predictor.probabilities(texts)
    saved = torch.tensor(
        [[r["probabilities"][label] for label in predictor.labels] for r in rows if r["split"] == "test"]
    )
    torch.testing.assert_close(adapter_probs, saved, atol=1e-5, rtol=0)
    merged = AutoModelForSequenceClassification.from_pretrained(lora_run / "merged").eval()
    tokenizer = AutoTokenizer.from_pretrained(lora_run / "merged")
    with torch.inference_mode():
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        merged_probs = torch.softmax(merged(**batch).logits, -1)
    torch.testing.assert_close(merged_probs, adapter_probs, atol=1e-5, rtol=0)
    assert merged.config.id2label[0] == predictor.labels[0]
