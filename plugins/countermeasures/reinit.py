"""`--reinit-layers K`: the top K encoder layers (and the pooler) re-initialised before fine-tuning, with the
model's own `_init_weights` (Zhang, Wu, Katiyar, Weinberger & Artzi 2021, ICLR, "Revisiting Few-sample BERT
Fine-tuning", arXiv 2006.05987). The top layers of a pre-trained encoder are the most specific to its
pre-training objective; fresh ones are fitted to the task from the lower layers' general features, which
speeds up fine-tuning and makes it more stable on few texts. The `reinit` over-fitting countermeasure
(`overfitting_cures.py`) turns it on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from mikiwame.framework import hookimpl
from mikiwame.framework.errors import ConfigError
from mikiwame.framework.options import option, read_options


@dataclass
class ReinitOptions:
    """top-layer re-initialisation (over-fitting countermeasure)"""

    SHOWN_WITH: ClassVar[tuple[str, ...]] = ("reinit",)  # with the countermeasure, i.e. when curves is selected

    reinit_layers: int = option(
        0, "re-initialise the top K encoder layers and the pooler before fine-tuning (needs --peft full)"
    )

    def validate(self) -> None:
        if self.reinit_layers < 0:
            raise ConfigError(f"--reinit-layers must be 0 or more, got {self.reinit_layers}", where="--reinit-layers")


@hookimpl
def mikiwame_options():
    return ReinitOptions


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of `config.num_hidden_layers` blocks (BERT's `encoder.layer`, GPT-2's `h`, ...): the first
    module list of that length, bottom layer first."""
    count = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise ConfigError(
        f"--reinit-layers: no stack of {count} layers found in {type(model).__name__}",
        where="--reinit-layers",
        fix="use it with a transformers encoder (BERT, RoBERTa, DeBERTa, ...) or leave it at 0",
    )


def reinitialise_top_layers(model: nn.Module, k: int, seed: int) -> list[str]:
    """Re-initialises the top `k` layers of `model` (a transformers `PreTrainedModel`) and its pooler in place,
    drawing from a generator seeded with `seed` (so every process draws the same weights); returns the names
    of the modules re-initialised. The classification head is left as the model source made it."""
    layers = encoder_layers(model)
    if k > len(layers):
        raise ConfigError(
            f"--reinit-layers {k}: the model has {len(layers)} layers",
            where="--reinit-layers",
            fix=f"use 1-{len(layers)}",
        )
    chosen = {f"layer {len(layers) - k + i}": layer for i, layer in enumerate(layers[len(layers) - k :])}
    pooler = getattr(getattr(model, "base_model", model), "pooler", None)
    if pooler is not None:
        chosen["pooler"] = pooler
    frozen = [name for name, m in chosen.items() if any(not p.requires_grad for p in m.parameters())]
    if frozen:
        raise ConfigError(
            f"--reinit-layers {k} re-initialises {', '.join(frozen)}, which the PEFT method keeps frozen: "
            "random frozen weights would stay random",
            where="--reinit-layers",
            fix="use it with --peft full",
        )
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        for module in chosen.values():
            for parameter in module.parameters():
                parameter._is_hf_initialized = False  # transformers skips weights it marked as loaded
            module.apply(model._init_weights)
    return list(chosen)


@hookimpl
def mikiwame_before_train(run: Any) -> None:
    k = read_options(ReinitOptions, run.config.options).reinit_layers
    if k and run.model is not None:
        reinitialise_top_layers(run.model, k, run.config.seed)
