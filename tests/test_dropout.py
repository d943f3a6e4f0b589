"""The engine's CPU dropout is nn.Dropout with a cheaper mask: same keep rate in every 16-bit lane of a draw,
exact expectation, the gradient of a mask, identity in eval mode, seeded; and swapping it into a LoRA BERT
changes nothing at evaluation."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import BertConfig, BertForSequenceClassification

from mikiwame.framework.dropout import LEVELS, FastDropout, keep_mask, use_fast_dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.03])
def test_every_lane_keeps_elements_at_the_rate_asked(p):
    torch.manual_seed(0)
    n = 1 << 22
    drop_levels = round(p * LEVELS)
    keep = keep_mask(torch.Size([n]), drop_levels, torch.device("cpu")).view(-1, 4).float()
    expected = 1 - drop_levels / LEVELS
    sigma = (expected * (1 - expected) / (n // 4)) ** 0.5
    assert torch.all((keep.mean(0) - expected).abs() < 5 * sigma)  # each of the four int16 lanes of a draw
    pairs = keep[:, 0] * keep[:, 1]  # neighbours are independent
    assert abs(pairs.mean().item() - expected**2) < 5 * sigma


def test_kept_elements_are_scaled_so_the_mean_is_unchanged_and_the_gradient_is_the_mask():
    torch.manual_seed(1)
    dropout = FastDropout(0.1).train()
    x = torch.ones(512, 1024, requires_grad=True)
    out = dropout(x)
    values = set(out.unique().tolist())
    assert values == {0.0, torch.tensor(dropout.scale).item()}
    assert dropout.scale == LEVELS / (LEVELS - round(0.1 * LEVELS))
    assert abs(out.mean().item() - 1) < 0.005
    out.sum().backward()
    assert torch.equal(x.grad, out.detach())


def test_bf16_input_stays_bf16_and_eval_mode_is_the_identity():
    dropout = FastDropout(0.2).train()
    x = torch.randn(64, 32, dtype=torch.bfloat16)
    assert dropout(x).dtype == torch.bfloat16
    assert dropout.eval()(x) is x


def test_the_mask_follows_the_global_seed():
    dropout = FastDropout(0.3).train()
    x = torch.randn(100, 100)
    torch.manual_seed(7)
    first = dropout(x)
    torch.manual_seed(7)
    assert torch.equal(dropout(x), first)
    assert not torch.equal(dropout(x), first)


def test_a_lora_bert_gets_fast_dropout_everywhere_nn_dropout_was_and_evaluates_the_same():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48
    )
    model = get_peft_model(
        BertForSequenceClassification(config),
        LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["query", "value"], task_type="SEQ_CLS"),
    ).eval()
    ids = torch.randint(5, 100, (4, 12))
    before = model(input_ids=ids).logits
    dropouts = sum(type(m) is torch.nn.Dropout and m.p > 0 for m in model.modules())
    assert use_fast_dropout(model) == dropouts > 0
    assert not any(type(m) is torch.nn.Dropout and m.p > 0 for m in model.modules())
    assert torch.equal(model(input_ids=ids).logits, before)
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        FastDropout(1.0)
