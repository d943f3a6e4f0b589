"""The contract of a PEFT-method plugin, and how a run's saved model is loaded back for prediction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import torch

from .config import RunConfig
from .errors import RunDirectoryError

METHOD_FILE = "peft.json"


class PeftMethod(Protocol):
    """`apply` makes the classifier head and the method's own parameters trainable (and nothing else);
    `save`/`load` round-trip to identical predictions."""

    name: str
    family: str

    def default_lr(self, pretrained: bool) -> float: ...

    def apply(self, model: torch.nn.Module, config: RunConfig) -> torch.nn.Module: ...

    def save(self, model: torch.nn.Module, directory: Path) -> None: ...

    def load(self, directory: Path, base: str | None, labels: list[str]) -> torch.nn.Module: ...


def write_method_file(directory: Path, method: str, base: str | None, labels: list[str]) -> None:
    record = {"method": method, "base": base, "labels": labels}
    (directory / METHOD_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def read_method_file(directory: Path) -> dict[str, Any]:
    path = directory / METHOD_FILE
    if not path.is_file():
        raise RunDirectoryError(f"{directory} has no {METHOD_FILE}", fix="give the model/ folder of a finished run")
    return json.loads(path.read_text(encoding="utf-8"))
