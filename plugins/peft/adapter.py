"""Bottleneck adapters (Houlsby et al., 2019) for BERT-family encoders, which PEFT does not offer.

In every layer, after the attention output projection and after the feed-forward output projection (before
their residual LayerNorm), a small module adds `up(gelu(down(h)))` to the projection's output `h`. `up` starts
at zero, so the adapted model starts exactly where the base is. The adapters hang on the output blocks as
`.adapter` submodules and act through forward hooks, so no base weight is renamed or touched: the base stays
bit-identical and a saved run stores only adapters and head (trained_weights.safetensors) plus the bottleneck
size (trained_part.json)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import PeftError
from mikiwame.framework.options import option, read_options
from mikiwame.plugins.peft.support import TrainedPartMethod, train_only

DEFAULT_SIZE = 32
# BERT, RoBERTa, ELECTRA, ...: `layer.N.attention.output` (after attention) and `layer.N.output` (after FFN).
OUTPUT_BLOCK = re.compile(r"layer\.\d+\.(attention\.)?output$")


class BottleneckAdapter(nn.Module):
    def __init__(self, hidden: int, size: int) -> None:
        super().__init__()
        self.down = nn.Linear(hidden, size)
        self.up = nn.Linear(size, hidden)
        nn.init.normal_(self.down.weight, std=0.02)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(nn.functional.gelu(self.down(hidden)))

    def after_projection(self, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        """Forward hook on the block's `dense` projection: replaces its output with the adapted one."""
        return self(output)


def output_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """The blocks to adapt, refused unless every layer has both, each with a Linear `dense`."""
    blocks = {
        name: module
        for name, module in model.named_modules()
        if OUTPUT_BLOCK.search(name) and isinstance(getattr(module, "dense", None), nn.Linear)
    }
    layers = getattr(model.config, "num_hidden_layers", None)
    if not blocks or (layers is not None and len(blocks) != 2 * layers):
        raise PeftError(
            f"bottleneck adapters need BERT-style blocks `layer.N.attention.output` and `layer.N.output` with a "
            f"Linear `dense` in each of the {layers} layers; {type(model).__name__} has {len(blocks)}",
            where="--peft adapter",
            fix="use a BERT-family model (BERT, RoBERTa, ELECTRA), or a PEFT method such as lora",
        )
    return blocks


def insert_adapters(model: nn.Module, size: int) -> nn.Module:
    hidden = model.config.hidden_size
    for block in output_blocks(model).values():
        block.adapter = BottleneckAdapter(hidden, size)
        block.dense.register_forward_hook(block.adapter.after_projection)
    return model


class Adapter(TrainedPartMethod):
    name = "adapter"
    family = "adapter"

    def default_lr(self, pretrained: bool) -> float:
        return 1e-3 if pretrained else 3e-3

    def apply(self, model: nn.Module, config: RunConfig) -> nn.Module:
        size = read_options(AdapterOptions, config.options).adapter_size
        if size < 1:
            raise PeftError(f"--adapter-size must be at least 1, got {size}", where="--adapter-size")
        insert_adapters(model, size)
        train_only(model, lambda name: ".adapter." in name)
        return model

    def record(self, model: nn.Module) -> dict[str, Any]:
        first = next(m for m in model.modules() if isinstance(m, BottleneckAdapter))
        return {"adapter_size": first.down.out_features}

    def rebuild(self, model: nn.Module, record: dict[str, Any]) -> nn.Module:
        return insert_adapters(model, int(record["adapter_size"]))


@dataclass
class AdapterOptions:
    adapter_size: int = option(DEFAULT_SIZE, "bottleneck adapters: width of the bottleneck")


@hookimpl
def mikiwame_options():
    return AdapterOptions


@hookimpl
def mikiwame_register_peft_methods(register):
    register(Adapter())
