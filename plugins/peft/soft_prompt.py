"""Soft-prompt methods through PEFT: prompt tuning (trained embeddings prepended to the input) and prefix
tuning (trained keys and values prepended in every layer). The base stays frozen; the head trains.

Both consume position embeddings on BERT: prompt tuning prepends real input positions, and prefix tuning
(`past_key_values` in transformers 5) shifts the text's position ids by the prefix length. A text of
--max-length tokens therefore needs max-length + virtual tokens positions; when the model has fewer, the
method is refused with the numbers, rather than truncating texts behind the user's back."""

from __future__ import annotations

import inspect
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel, PrefixTuningConfig, PromptTuningConfig, TaskType, get_peft_model
from peft.config import PeftConfig

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.errors import PeftError
from mikiwame.framework.options import option, read_options
from mikiwame.plugins.peft.support import PeftLibraryMethod

DEFAULT_VIRTUAL_TOKENS = 20


def virtual_tokens(config: RunConfig) -> int:
    count = read_options(SoftPromptOptions, config.options).num_virtual_tokens
    if count < 1:
        raise PeftError(f"--soft-prompt-tokens must be at least 1, got {count}", where="--soft-prompt-tokens")
    return count


def check_positions(model: torch.nn.Module, config: RunConfig, count: int, method: str) -> None:
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is None:
        raise PeftError(
            f"{type(model).__name__} does not say how many positions it has (no max_position_embeddings), so "
            f"{method} cannot check that {count} virtual tokens fit",
            where=f"--peft {method}",
            fix="use a BERT-family model, or another method (lora, adapter)",
        )
    if config.max_length + count > positions:
        raise PeftError(
            f"--max-length {config.max_length} + {count} virtual tokens = {config.max_length + count} positions, "
            f"but the model has {positions}",
            where=f"--peft {method}",
            fix=f"use --max-length {positions - count} or fewer, "
            f"or --soft-prompt-tokens {positions - config.max_length} or fewer",
        )


class SoftPrompt(PeftLibraryMethod):
    family = "soft prompt"

    def peft_config(self, count: int) -> PeftConfig:
        raise NotImplementedError

    def apply(self, model: torch.nn.Module, config: RunConfig) -> torch.nn.Module:
        count = virtual_tokens(config)
        check_positions(model, config, count, self.name)
        return get_peft_model(model, self.peft_config(count))


class PromptTuning(SoftPrompt):
    name = "prompt-tuning"

    def default_lr(self, pretrained: bool) -> float:
        return 3e-2

    def peft_config(self, count: int) -> PeftConfig:
        return PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=count)


def _prefix_forward(
    self: PeftModel,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    output_attentions: bool | None = None,
    output_hidden_states: bool | None = None,
    return_dict: bool | None = None,
    **kwargs: Any,
) -> Any:
    """PEFT's prefix-tuning forward for sequence classification, minus its probe of the backbone's signature
    for a `past_key_values` argument: transformers 5.24 renamed that argument `cache` (the old name is still
    accepted until 5.40), and PEFT 0.21 then refuses BERT outright. The prefix goes in under whichever name the
    backbone declares; the attention mask already covers it (PEFT prepends ones before calling this)."""
    batch_size = (input_ids if input_ids is not None else inputs_embeds).shape[0]
    backbone = self.base_model.get_submodule(self.transformer_backbone_name)
    cache_argument = "cache" if "cache" in inspect.signature(backbone.forward).parameters else "past_key_values"
    kwargs[cache_argument] = self.get_prompt(batch_size)
    return self.base_model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        inputs_embeds=inputs_embeds,
        labels=labels,
        output_attentions=output_attentions,
        output_hidden_states=output_hidden_states,
        return_dict=return_dict,
        **kwargs,
    )


def route_prefix_through_cache(model: PeftModel) -> PeftModel:
    """Give this PEFT model the version-independent prefix forward above (on the instance: PEFT builds the
    class, so a subclass cannot be swapped in)."""
    model._prefix_tuning_forward = types.MethodType(_prefix_forward, model)
    return model


class PrefixTuning(SoftPrompt):
    name = "prefix-tuning"

    def default_lr(self, pretrained: bool) -> float:
        return 1e-2 if pretrained else 1e-1

    def peft_config(self, count: int) -> PeftConfig:
        return PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=count)

    def apply(self, model: torch.nn.Module, config: RunConfig) -> torch.nn.Module:
        return route_prefix_through_cache(super().apply(model, config))

    def load(self, directory: Path, base: str | None, labels: list[str]) -> torch.nn.Module:
        return route_prefix_through_cache(super().load(directory, base, labels))


@dataclass
class SoftPromptOptions:
    num_virtual_tokens: int = option(
        DEFAULT_VIRTUAL_TOKENS,
        "soft prompts (prompt-tuning, prefix-tuning): trained tokens; they use positions beside --max-length",
        flag="--soft-prompt-tokens",
    )


@hookimpl
def mikiwame_options():
    return SoftPromptOptions


@hookimpl
def mikiwame_register_peft_methods(register):
    register(PromptTuning())
    register(PrefixTuning())
