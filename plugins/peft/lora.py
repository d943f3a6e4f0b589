"""LoRA through PEFT, with target validation: a pattern that matches no module, or only some layers, stops
the run with the module names that do exist (a silent mismatch once left a course model at 0% accuracy)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar

import torch
from peft import LoraConfig, TaskType, get_peft_model
from transformers import PreTrainedModel

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig, check_probability
from mikiwame.framework.errors import ConfigError, PeftError
from mikiwame.framework.options import option, read_options
from mikiwame.plugins.peft.support import PeftLibraryMethod

LORA_LAYER_TYPES = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d)
LAYER_INDEX = re.compile(r"\.(\d+)\.")


def _matches(module_name: str, pattern: str) -> bool:
    """PEFT's rule for a list of target names: the full name, or its dotted suffix."""
    return module_name == pattern or module_name.endswith("." + pattern)


def _target_names(model: torch.nn.Module) -> list[str]:
    """Distinct suffixes after the layer index (e.g. attention.self.query): what a user can target."""
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, LORA_LAYER_TYPES):
            parts = LAYER_INDEX.split(name, maxsplit=1)
            names.add(parts[-1].lstrip(".") if len(parts) == 3 else name)
    return sorted(names)


def validate_targets(
    model: torch.nn.Module, targets: list[str], method: str = "LoRA", flag: str = "--lora-targets"
) -> None:
    modules = dict(model.named_modules())
    layers = getattr(model.config, "num_hidden_layers", None)
    available = ", ".join(_target_names(model))
    for pattern in targets:
        hits = [n for n in modules if _matches(n, pattern)]
        if not hits:
            raise PeftError(
                f"{method} target {pattern!r} matches no module of {type(model).__name__}",
                where=flag,
                fix=f"use names that exist: {available}",
            )
        wrong = [n for n in hits if not isinstance(modules[n], LORA_LAYER_TYPES)]
        if wrong:
            raise PeftError(
                f"{method} target {pattern!r} matches {wrong[0]} ({type(modules[wrong[0]]).__name__}), "
                f"which {method} cannot adapt",
                where=flag,
                fix=f"target linear layers: {available}",
            )
        covered = {int(m.group(1)) for n in hits if (m := LAYER_INDEX.search(n))}
        if layers and covered and len(covered) < layers:
            missing = sorted(set(range(layers)) - covered)
            raise PeftError(
                f"{method} target {pattern!r} matches only {len(covered)} of {layers} layers "
                f"(missing layers {missing})",
                where=flag,
                fix=f"use a name every layer has: {available}",
            )


@dataclass
class LoraOptions:
    """LoRA and DoRA (--peft lora / dora; DoRA in plugins/peft/dora.py)"""

    SHOWN_WITH: ClassVar[tuple[str, ...]] = ("dora",)

    lora_r: int = option(8, "rank of the LoRA update")
    lora_alpha: int = option(16, "scale of the LoRA update (alpha / r)")
    lora_dropout: float = option(0.1, "dropout on the LoRA branch")
    lora_targets: list[str] = option(["query", "value"], "comma-separated module name patterns")

    def validate(self) -> None:
        if self.lora_r < 1:
            raise ConfigError(f"--lora-r must be at least 1, got {self.lora_r}")
        if self.lora_alpha < 1:
            raise ConfigError(
                f"--lora-alpha must be at least 1, got {self.lora_alpha}",
                fix="alpha / r scales the update; a negative alpha reverses it: use e.g. 16",
            )
        if not self.lora_targets:
            raise ConfigError(
                "--lora-targets names no module",
                fix="give comma-separated module name patterns, e.g. --lora-targets query,value",
            )
        if not math.isfinite(self.lora_dropout):
            raise ConfigError(f"--lora-dropout must be a finite number, got {self.lora_dropout}")
        check_probability("--lora-dropout", self.lora_dropout)


class LoRA(PeftLibraryMethod):
    name = "lora"
    family = "reparametrisation"
    use_dora = False

    def default_lr(self, pretrained: bool) -> float:
        return 5e-4 if pretrained else 2e-3

    def apply(self, model: torch.nn.Module, config: RunConfig) -> torch.nn.Module:
        options = read_options(LoraOptions, config.options)
        validate_targets(model, options.lora_targets)
        lora = LoraConfig(
            task_type=TaskType.SEQ_CLS,
            r=options.lora_r,
            lora_alpha=options.lora_alpha,
            lora_dropout=options.lora_dropout,
            target_modules=list(options.lora_targets),
            use_dora=self.use_dora,
        )
        return get_peft_model(model, lora)

    def merge(self, model: torch.nn.Module) -> PreTrainedModel:
        return model.merge_and_unload()


@hookimpl
def mikiwame_register_peft_methods(register):
    register(LoRA())


@hookimpl
def mikiwame_options():
    return LoraOptions
