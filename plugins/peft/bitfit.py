"""Selective fine-tuning: BitFit (Ben Zaken et al., 2022) trains the bias terms of the base and the head,
nothing else. The run saves only those tensors."""

from __future__ import annotations

import torch

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import PeftError
from mikiwame.plugins.peft.support import TrainedPartMethod, train_only


class BitFit(TrainedPartMethod):
    name = "bitfit"
    family = "selective"

    def default_lr(self, pretrained: bool) -> float:
        return 1e-3 if pretrained else 5e-3

    def apply(self, model: torch.nn.Module, config: RunConfig) -> torch.nn.Module:
        if not train_only(model, lambda name: name.endswith(".bias")):
            raise PeftError(
                f"{type(model).__name__} has no bias terms, so BitFit would train the head alone",
                where="--peft bitfit",
                fix="use --peft head-only for a linear probe, or a model with biases",
            )
        return model


@hookimpl
def mikiwame_register_peft_methods(register):
    register(BitFit())
