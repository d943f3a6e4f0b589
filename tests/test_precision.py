"""Frozen linears held in the autocast dtype change nothing autocast computes; trainable weights stay fp32."""

from __future__ import annotations

import json

import torch
from peft import LoraConfig, TaskType, get_peft_model
from safetensors.torch import load_file
from transformers import BertConfig, BertForSequenceClassification

from mikiwame.framework.precision import hold_frozen_linears_in
from mikiwame.framework.runner import run

from .conftest import tiny_config


def lora_bert() -> torch.nn.Module:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=3
    )
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, target_modules=["query", "value"])
    model = get_peft_model(BertForSequenceClassification(config), lora).eval()
    for name, p in model.named_parameters():  # LoRA B starts at zero: make the adapter do something
        if "lora_B" in name:
            torch.nn.init.normal_(p)
    return model


def test_frozen_linears_in_bf16_give_the_logits_autocast_gives():
    model = lora_bert()
    ids = torch.randint(5, 100, (4, 12))
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.inference_mode():
        before = model(input_ids=ids).logits
        cast = hold_frozen_linears_in(model, "bf16")
        after = model(input_ids=ids).logits
    # per layer: q/v bases, key, attention output, intermediate, output; the pooler; the frozen original head
    assert cast == 2 * 6 + 2
    assert torch.equal(before, after)
    trainable = {n: p.dtype for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and set(trainable.values()) == {torch.float32}
    frozen_q = model.base_model.model.bert.encoder.layer[0].attention.self.query.base_layer.weight
    assert frozen_q.dtype == torch.bfloat16
    assert model.base_model.model.bert.embeddings.word_embeddings.weight.dtype == torch.float32


def test_fp32_runs_are_left_alone():
    model = lora_bert()
    assert hold_frozen_linears_in(model, "no") == 0
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_bf16_lora_run_trains_and_saves_fp32_adapter(tmp_path):
    done = run(tiny_config(tmp_path, peft="lora", mixed_precision="bf16", epochs=1, lr=5e-3))
    adapter = load_file(done / "model" / "adapter_model.safetensors")
    assert adapter and {t.dtype for t in adapter.values()} == {torch.float32}
    metrics = json.loads((done / "metrics.json").read_text())
    assert metrics["optimizer_steps"] == 15
