"""Cures for over-fitting, the `curves` analyzer's finding (validation loss rising after its minimum while
training loss falls). Each is a change of the run's own options; docs/overfitting.md explains each with its
sources. The target figure is the rise of validation loss after its minimum (and the best validation loss)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.countermeasure import Target, with_values

RISE_METRIC = "validation-loss rise"
REINIT_LAYERS = 2  # Zhang et al. 2021 re-initialise 1-6 of BERT's top layers; 2 leaves 10 of BERT-base's 12


def _overfits(analysis: dict[str, Any]) -> bool:
    runs = analysis.get("runs") or [{}]
    return bool(runs[0].get("diagnosis", {}).get("overfitting"))


@dataclass(frozen=True)
class OptionCure:
    """An over-fitting countermeasure that is a change of options: `change(config)` returns the values, or
    None where it does not apply to this run (a lower LR of a run whose LR is the method's default, ...)."""

    name: str
    description: str
    change: Callable[[RunConfig], dict[str, Any] | None]
    sources: tuple[str, ...]
    analyzer: str = "curves"

    def targets(self, analysis: dict[str, Any], results: Any) -> list[Target]:
        if not _overfits(analysis) or self.change(RunConfig.of(**results.config)) is None:
            return []
        return [Target(self.analyzer, "over-fitting", RISE_METRIC)]

    def apply(self, config: RunConfig, target: Target) -> RunConfig:
        return with_values(config, **(self.change(config) or {}))


@dataclass(frozen=True)
class FullFineTuningCure(OptionCure):
    """An over-fitting cure that changes weights the PEFT method must train: only for a run that trained every
    weight (its `metrics.json` names the method it used, `--peft auto` resolved)."""

    def targets(self, analysis: dict[str, Any], results: Any) -> list[Target]:
        method = results.metrics.get("model", {}).get("peft")
        return super().targets(analysis, results) if method == "full" else []


def _lower_lr(config: RunConfig) -> dict[str, Any] | None:
    return None if config.lr is None else {"lr": config.lr / 10}


def _smaller_rank(config: RunConfig) -> dict[str, Any] | None:
    if config.peft != "lora":
        return None
    return {"lora_r": max(1, int(config.options.get("lora_r", 8)) // 4)}


def _stronger(name: str, value: float) -> Callable[[RunConfig], dict[str, Any] | None]:
    """The option raised to `value`, unless the run already used as much."""
    return lambda config: None if (getattr(config, name) or 0) >= value else {name: value}


CURES = (
    OptionCure(
        "restore-best",
        "keep the best validation epoch's weights (no early stopping)",
        lambda c: None if c.restores_best else {"restore_best": True},
        ("Prechelt 1998, Neural Networks: Tricks of the Trade (LNCS 1524), Early Stopping - But When?",),
    ),
    OptionCure(
        "early-stopping",
        "stop after 3 epochs without a new best validation loss, restore the best",
        lambda c: None if c.patience else {"patience": 3},
        ("Prechelt 1998, Neural Networks: Tricks of the Trade (LNCS 1524), Early Stopping - But When?",),
    ),
    OptionCure(
        "weight-decay",
        "AdamW weight decay 0.1",
        _stronger("weight_decay", 0.1),
        ("Loshchilov & Hutter 2019, ICLR, Decoupled Weight Decay Regularization",),
    ),
    OptionCure(
        "dropout",
        "dropout 0.3 in the model",
        _stronger("dropout", 0.3),
        ("Srivastava et al. 2014, JMLR 15, Dropout: A Simple Way to Prevent Neural Networks from Overfitting",),
    ),
    OptionCure(
        "lower-lr",
        "a learning rate 10x lower",
        _lower_lr,
        ("Mosbach et al. 2021, ICLR, On the Stability of Fine-tuning BERT",),
    ),
    OptionCure(
        "label-smoothing",
        "label smoothing 0.1",
        _stronger("label_smoothing", 0.1),
        (
            "Szegedy et al. 2016, CVPR, Rethinking the Inception Architecture for Computer Vision",
            "Müller et al. 2019, NeurIPS, When Does Label Smoothing Help?",
        ),
    ),
    OptionCure(
        "lora-rank",
        "a LoRA rank 4x smaller: fewer trainable parameters",
        _smaller_rank,
        ("Hu et al. 2022, ICLR, LoRA: Low-Rank Adaptation of Large Language Models",),
    ),
    FullFineTuningCure(
        "reinit",
        f"re-initialise the top {REINIT_LAYERS} encoder layers and the pooler before fine-tuning",
        lambda c: None if c.options.get("reinit_layers") else {"reinit_layers": REINIT_LAYERS},
        ("Zhang et al. 2021, ICLR, Revisiting Few-sample BERT Fine-tuning (arXiv 2006.05987)",),
    ),
    OptionCure(
        "head-only",
        "train only the classification head: the fewest trainable parameters",
        lambda c: None if c.peft == "head-only" else {"peft": "head-only"},
        ("Peters et al. 2019, RepL4NLP, To Tune or Not to Tune? Adapting Pretrained Representations to Diverse Tasks",),
    ),
)


@hookimpl
def mikiwame_register_countermeasures(register):
    for cure in CURES:
        register(cure)
