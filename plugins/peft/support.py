"""What PEFT-method plugins share: loading the base classifier a method was applied to, saving and loading
methods implemented by the `peft` library, and saving only the trained part of a model for methods that train
a subset of its own weights (or small modules of ours), so that a run's model/ folder holds kilobytes, not
the whole base again. Not a plugin itself: the method modules import it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification

from mikiwame.framework.errors import PeftError
from mikiwame.framework.peft_method import PeftMethod
from mikiwame.framework.runfiles import read_json

TRAINED_WEIGHTS = "trained_weights.safetensors"
TRAINED_CONFIG = "trained_part.json"
CLASSIFIER_NAMES = ("classifier", "score")


def load_base_classifier(base: str | None, labels: list[str]) -> torch.nn.Module:
    """The base model as the run started from it, with a head sized for `labels` (the saved method overwrites
    the head's weights)."""
    if base is None:
        raise PeftError("the saved model names no base model", fix="re-run the training; model/peft.json is damaged")
    return AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        ignore_mismatched_sizes=True,
    )


class PeftLibraryMethod(PeftMethod):
    """Save and load for methods built with `peft.get_peft_model`: the adapter and the classifier head
    (PEFT's `modules_to_save` for SEQ_CLS) go to adapter_model.safetensors, the base stays where it is."""

    def save(self, model: torch.nn.Module, directory: Path) -> None:
        model.save_pretrained(directory)

    def load(self, directory: Path, base: str | None, labels: list[str]) -> torch.nn.Module:
        return PeftModel.from_pretrained(load_base_classifier(base, labels), directory)


def classifier_prefixes(model: torch.nn.Module) -> list[str]:
    """The sequence-classification head's module names (`classifier` for BERT, `score` for decoder models)."""
    found = [name for name, _ in model.named_modules() if name.rsplit(".", 1)[-1] in CLASSIFIER_NAMES]
    if not found:
        raise PeftError(
            f"{type(model).__name__} has no classification head named {' or '.join(CLASSIFIER_NAMES)}",
            where="--peft",
            fix="use a *ForSequenceClassification model",
        )
    return found


def train_only(model: torch.nn.Module, keep: Callable[[str], bool]) -> int:
    """Freeze every parameter except the head and those `keep` selects; return how many outside the head `keep`
    selected, so a method whose selection is empty can refuse instead of silently training the head alone."""
    heads = tuple(prefix + "." for prefix in classifier_prefixes(model))
    selected = 0
    for name, parameter in model.named_parameters():
        head = name.startswith(heads)
        chosen = keep(name) and not head
        selected += chosen
        parameter.requires_grad_(chosen or head)
    return selected


def save_trained_part(model: torch.nn.Module, directory: Path, record: dict[str, Any]) -> None:
    """The trainable tensors only, plus a small JSON record of how to rebuild the method on the base."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    save_file(tensors, str(directory / TRAINED_WEIGHTS))
    (directory / TRAINED_CONFIG).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def read_trained_record(directory: Path) -> dict[str, Any]:
    record: dict[str, Any] = read_json(directory / TRAINED_CONFIG)
    return record


def load_trained_part(model: torch.nn.Module, directory: Path) -> torch.nn.Module:
    """Put the saved tensors into `model` (the base with the method's structure applied); every saved tensor
    must find its place, or the saved run does not belong to this base."""
    tensors = load_file(str(directory / TRAINED_WEIGHTS))
    missing_in_model = sorted(set(tensors) - {n for n, _ in model.named_parameters()})
    if missing_in_model:
        raise PeftError(
            f"{directory / TRAINED_WEIGHTS} holds {len(missing_in_model)} tensors the base model lacks, "
            f"e.g. {missing_in_model[0]}",
            fix="load the run with the base model it was trained from (model/peft.json names it)",
        )
    model.load_state_dict(tensors, strict=False)
    return model


class TrainedPartMethod(PeftMethod):
    """Save and load for methods that train part of the model in place (bias terms, the head) or insert small
    modules of their own: `record` says how to rebuild the structure, `rebuild` re-applies it to a fresh base."""

    name: str

    def record(self, model: torch.nn.Module) -> dict[str, Any]:
        return {}

    def rebuild(self, model: torch.nn.Module, record: dict[str, Any]) -> torch.nn.Module:
        return model

    def save(self, model: torch.nn.Module, directory: Path) -> None:
        save_trained_part(model, directory, {"method": self.name, **self.record(model)})

    def load(self, directory: Path, base: str | None, labels: list[str]) -> torch.nn.Module:
        model = self.rebuild(load_base_classifier(base, labels), read_trained_record(directory))
        return load_trained_part(model, directory)
