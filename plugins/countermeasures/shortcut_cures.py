"""Cures for a shortcut the `shortcuts` analyzer flagged (a unit that stands for one label): three data
transforms of the training texts and one training objective, each switched on by this plugin's options so a
treated run's config.json reproduces it.

- `shortcut-delete`: the unit deleted from every training text (Wang et al. 2022, NAACL Findings, "Identifying
  and Mitigating Spurious Correlations for Improving Robustness in NLP Models": mask the found tokens).
- `shortcut-augment`: counterfactual augmentation: copies of the texts that hold the unit without it, and
  copies of other labels' texts with the unit inserted where it usually stands, so it predicts no label.
- `shortcut-neutral`: the unit replaced by a neutral token ([MASK]) in training texts, keeping the text's shape.
  Not [UNK]: a unit the treated training texts no longer hold is out of a vocabulary built from them (the tiny
  model's), so at test time it *becomes* [UNK], and a model taught that [UNK] at the start means the label
  keeps the shortcut (measured with [UNK]: shift-set accuracy 0.000 → 0.000 on planted shapes, docs/countermeasures.md).
- `shortcut-consistency`: a consistency loss between a text and the text with the unit masked (Li et al. 2026,
  arXiv 2604.12277, "Shortcut Guardrail": a masked consistency objective), the data left as it is.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from mikiwame.framework import hookimpl
from mikiwame.framework.config import RunConfig
from mikiwame.framework.countermeasure import OptionValuesCure, Target, with_values
from mikiwame.framework.options import option, read_options
from mikiwame.framework.task import TaskData
from mikiwame.framework.unit_edits import delete_unit, holds_unit, insert_unit, sample_indices, usual_place

NEUTRAL = "[MASK]"
CURES = ("none", "delete", "augment", "neutral")
CONSISTENCY_WEIGHT = 1.0
SHIFT_METRIC = "shift-set accuracy"


@dataclass
class ShortcutCureOptions:
    """shortcut countermeasures (`mikiwame countermeasures`)"""

    shortcut_cure: str = option(
        "none",
        "change the training texts holding --shortcut-cures-units",
        choices=CURES,
        flag="--shortcut-cures-method",
    )
    shortcut_units: list[str] = option(
        [], "units (words, tags) the shortcut cures treat, comma-separated", flag="--shortcut-cures-units"
    )
    shortcut_consistency: float = option(
        0.0, "weight of a consistency loss between a text and the text with --shortcut-cures-units masked"
    )


@hookimpl
def mikiwame_options():
    return ShortcutCureOptions


def augment(data: TaskData, unit: str, seed: int) -> TaskData:
    """Copies of the training texts holding `unit` without it, and for every other label as many of its
    texts (at most all) with the unit inserted where it usually stands; labels unchanged."""
    train = data.split("train")
    holding = [e for e in train if holds_unit(e.text, unit)]
    if not holding:
        return data
    own = Counter(e.label for e in holding).most_common(1)[0][0]
    place = usual_place([e.text for e in holding], unit)
    added = [replace(e, id=f"{e.id}~without", text=delete_unit(e.text, unit)) for e in holding]
    for k, label in enumerate(sorted(set(data.labels) - {own})):
        others = [e for e in train if e.label == label and not holds_unit(e.text, unit)]
        for i in sample_indices(len(others), len(holding), seed + k):
            added.append(replace(others[i], id=f"{others[i].id}~with", text=insert_unit(others[i].text, unit, place)))
    return TaskData(data.name, data.examples + added, data.source, data.labels)


def edit_training_texts(data: TaskData, unit: str, replacement: str) -> TaskData:
    examples = [
        replace(e, text=delete_unit(e.text, unit, replacement)) if e.split == "train" else e for e in data.examples
    ]
    return TaskData(data.name, examples, data.source, data.labels)


@hookimpl(trylast=True)  # a cure edits the texts as the task's own steps (entity masking) left them
def mikiwame_transform_data(config: RunConfig, data: TaskData) -> TaskData | None:
    options = read_options(ShortcutCureOptions, config.options)
    if options.shortcut_cure == "none":
        return None
    for unit in options.shortcut_units:
        if options.shortcut_cure == "augment":
            data = augment(data, unit, config.seed)
        else:
            data = edit_training_texts(data, unit, NEUTRAL if options.shortcut_cure == "neutral" else "")
    return data


def _unit_positions(input_ids: torch.Tensor, unit_ids: list[int]) -> torch.Tensor:
    """A boolean mask over the batch's tokens: True on every token of an occurrence of `unit_ids`."""
    n = len(unit_ids)
    hits = torch.zeros_like(input_ids, dtype=torch.bool)
    if n == 0 or input_ids.shape[1] < n:
        return hits
    windows = input_ids.unfold(1, n, 1)  # (batch, positions, n)
    starts = (windows == torch.tensor(unit_ids, device=input_ids.device)).all(-1)
    for offset in range(n):
        hits[:, offset : offset + starts.shape[1]] |= starts
    return hits


@hookimpl
def mikiwame_training_loss(run: Any, model: Any, inputs: dict[str, torch.Tensor], logits: torch.Tensor):
    """Symmetric KL between the predictions on the texts holding a unit and on the same texts with its tokens
    masked, times --shortcut-consistency: the model is taught to say the same with and without the unit."""
    options = read_options(ShortcutCureOptions, run.config.options)
    if not options.shortcut_consistency or not options.shortcut_units or run.tokenizer is None:
        return None
    tokenizer = run.tokenizer
    masked_id = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else tokenizer.unk_token_id
    hits = torch.zeros_like(inputs["input_ids"], dtype=torch.bool)
    for unit in options.shortcut_units:
        hits |= _unit_positions(inputs["input_ids"], tokenizer(unit, add_special_tokens=False)["input_ids"])
    rows = hits.any(-1)
    if not rows.any():
        return logits.sum() * 0.0  # every process takes part in the same backward pass
    masked = {k: v[rows] for k, v in inputs.items()}
    masked["input_ids"] = masked["input_ids"].masked_fill(hits[rows], masked_id)
    log_p = F.log_softmax(logits[rows].float(), -1)
    log_q = F.log_softmax(model(**masked).logits.float(), -1)
    kl = F.kl_div(log_q, log_p, log_target=True, reduction="batchmean")
    kl = kl + F.kl_div(log_p, log_q, log_target=True, reduction="batchmean")
    return options.shortcut_consistency * kl * rows.float().mean()


@dataclass(frozen=True)
class ShortcutCure(OptionValuesCure):
    """One shortcut countermeasure: the option values that switch it on, for the flagged unit."""

    analyzer: str = "shortcuts"

    def targets(self, analysis: dict[str, Any], results: Any) -> list[Target]:
        return [
            Target(self.analyzer, "shortcut", SHIFT_METRIC, {"unit": row["unit"], "label": row["label"]})
            for row in analysis.get("flagged", [])
        ]

    def apply(self, config: RunConfig, target: Target) -> RunConfig:
        return with_values(super().apply(config, target), shortcut_units=[target.detail["unit"]])


WANG = "Wang et al. 2022, NAACL Findings, Identifying and Mitigating Spurious Correlations for Improving Robustness"
KAUSHIK = (
    "Kaushik et al. 2020, ICLR, Learning the Difference that Makes a Difference with Counterfactually-Augmented Data"
)
LI = "Li et al. 2026, arXiv 2604.12277, Shortcut Guardrail"

CURES_REGISTERED = (
    ShortcutCure(
        "shortcut-delete", "delete the unit from every training text", (("shortcut_cure", "delete"),), (WANG,)
    ),
    ShortcutCure(
        "shortcut-augment",
        "add training copies without the unit, and other labels' texts with it where it usually stands",
        (("shortcut_cure", "augment"),),
        (KAUSHIK, WANG),
    ),
    ShortcutCure(
        "shortcut-neutral", f"replace the unit by {NEUTRAL} in training texts", (("shortcut_cure", "neutral"),), (WANG,)
    ),
    ShortcutCure(
        "shortcut-consistency",
        "a consistency loss between a text and the text with the unit masked",
        (("shortcut_consistency", CONSISTENCY_WEIGHT),),
        (LI,),
    ),
)


@hookimpl
def mikiwame_register_countermeasures(register):
    for cure in CURES_REGISTERED:
        register(cure)
