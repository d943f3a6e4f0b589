"""Full fine-tuning, the baseline every PEFT method is compared to: every weight trains, and the run saves the
whole model (it needs no base to load)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.peft_method import PeftMethod


class FullFineTuning(PeftMethod):
    name = "full"
    family = "baseline"
    trains_every_weight = True  # saves every weight: the run needs no base to load, and random weights are fine

    def default_lr(self, pretrained: bool) -> float:
        return 5e-5 if pretrained else 1e-3

    def apply(self, model: torch.nn.Module, config: RunConfig) -> torch.nn.Module:
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    def save(self, model: torch.nn.Module, directory: Path) -> None:
        model.save_pretrained(directory)

    def load(self, directory: Path, base: str | None, labels: list[str]) -> torch.nn.Module:
        return AutoModelForSequenceClassification.from_pretrained(directory)


@hookimpl
def mikiwame_register_peft_methods(register):
    register(FullFineTuning())
