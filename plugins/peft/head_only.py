"""Head-only fine-tuning, the other baseline: a linear probe, the encoder frozen, only the classification head
trains (and is all the run saves)."""

from __future__ import annotations

import torch

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.plugins.peft.support import TrainedPartMethod, train_only


class HeadOnly(TrainedPartMethod):
    name = "head-only"
    family = "baseline"

    def default_lr(self, pretrained: bool) -> float:
        return 5e-3

    def apply(self, model: torch.nn.Module, config: RunConfig) -> torch.nn.Module:
        train_only(model, lambda name: False)
        return model


@hookimpl
def mikiwame_register_peft_methods(register):
    register(HeadOnly())
