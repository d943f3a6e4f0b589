"""The contract of a PEFT-method plugin, and how a run's saved model is loaded back for prediction."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from transformers import PreTrainedModel

from .config import RunConfig
from .errors import RunDirectoryError
from .rundir import inside
from .runfiles import Obj, read_json

METHOD_FILE = "peft.json"
METHOD_RECORD = Obj({"method": str, "labels": list[str]}, {"base": str | None})


class PeftMethod(Protocol):
    """`apply` makes the classifier head and the method's own parameters trainable (and nothing else);
    `save`/`load` round-trip to identical predictions; `default_lr` is the learning rate without `--lr`.
    Subclass it to inherit the defaults of the optional members."""

    name: str
    family: str
    trains_every_weight: bool = False
    """True for a method that trains and saves every weight: its run needs no base model to load, and training
    it on a random-weight base is not warned about."""
    merge: Callable[[torch.nn.Module], PreTrainedModel] | None = None
    """`merge(model)` folds the method's weights into the base and returns a plain transformers model (what
    `--merge` saves as RUN_DIR/merged/); None for a method that cannot, which `--merge` refuses before training."""

    def default_lr(self, pretrained: bool) -> float: ...

    def apply(self, model: torch.nn.Module, config: RunConfig) -> torch.nn.Module: ...

    def save(self, model: torch.nn.Module, directory: Path) -> None: ...

    def load(self, directory: Path, base: str | None, labels: list[str]) -> torch.nn.Module: ...


def write_method_file(directory: Path, method: str, base: str | None, labels: list[str]) -> None:
    record = {"method": method, "base": base, "labels": labels}
    (directory / METHOD_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def resolve_base(run_dir: Path, base: str | None) -> str | None:
    """The base model a saved method names (peft.json's `base`): a folder inside the run, resolved and refused
    when it leaves the run (`../x`, an absolute path, a symlink out), or a name (a hub id; a full fine-tune's
    description), which must not also name a file or folder here (transformers would load it instead)."""
    if base is None:
        return None
    if not isinstance(base, str) or not base:
        raise RunDirectoryError(f"{run_dir / 'model' / METHOD_FILE}: base {base!r} is not a model name")
    relative = Path(base)
    if relative.is_absolute() or ".." in relative.parts or (run_dir / relative).exists():
        return str(inside(run_dir, relative, f"{run_dir / 'model' / METHOD_FILE}: the base model"))
    if Path(base).exists():
        raise RunDirectoryError(
            f"{run_dir / 'model' / METHOD_FILE}: base {base!r} is not inside the run but names {Path(base).resolve()}",
            fix="a run's base is its own base_model/ folder or a hub id such as cl-tohoku/bert-base-japanese-v3",
        )
    return base


def is_hub_id(base: str | None) -> bool:
    return base is not None and HUB_ID.fullmatch(base) is not None


def read_method_file(directory: Path) -> dict[str, Any]:
    """model/peft.json: which method saved the model, on which base, for which labels (checked)."""
    path = directory / METHOD_FILE
    if not path.exists():
        raise RunDirectoryError(f"{directory} has no {METHOD_FILE}", fix="give the model/ folder of a finished run")
    record: dict[str, Any] = read_json(path, METHOD_RECORD)
    return record
