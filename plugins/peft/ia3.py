"""IA3 through PEFT: learned per-channel scales on keys, values and feed-forward activations, merged back into
the base weights."""

from __future__ import annotations

import torch
from peft import IA3Config, TaskType, get_peft_model
from peft.utils import (
    TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING,
    TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING,
)
from transformers import PreTrainedModel

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import PeftError
from mikiwame.plugins.peft.lora import validate_targets
from mikiwame.plugins.peft.support import PeftLibraryMethod


class IA3(PeftLibraryMethod):
    """PEFT's own target choice for the architecture (for BERT: key, value, output.dense, with output.dense as
    feed-forward), checked to exist in every layer; an architecture PEFT has no IA3 targets for is refused."""

    name = "ia3"
    family = "reparametrisation"

    def default_lr(self, pretrained: bool) -> float:
        return 3e-3 if pretrained else 1e-2

    def apply(self, model: torch.nn.Module, config: RunConfig) -> torch.nn.Module:
        model_type = getattr(model.config, "model_type", None)
        targets = TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING.get(model_type)
        if targets is None:
            known = ", ".join(sorted(TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING))
            raise PeftError(
                f"IA3 has no target modules for model type {model_type!r}",
                where="--peft ia3",
                fix=f"use a model of a type PEFT knows for IA3 ({known}) or another method (lora)",
            )
        feedforward = TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING[model_type]
        validate_targets(model, list(targets), method="IA3", flag="--peft ia3")
        ia3 = IA3Config(task_type=TaskType.SEQ_CLS, target_modules=list(targets), feedforward_modules=list(feedforward))
        return get_peft_model(model, ia3)

    def merge(self, model: torch.nn.Module) -> PreTrainedModel:
        return model.merge_and_unload()


@hookimpl
def mikiwame_register_peft_methods(register):
    register(IA3())
