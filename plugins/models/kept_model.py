"""The transformers model behind a classifier the engine does not train (the cloze and in-context language
models, an off-the-shelf pipeline), kept with the run, so that `mikiwame predict` and `mikiwame analyze` load
the model the run used.

As the fine-tuning path does with its base model: a hub model is named by its id (it is not copied, the hub
keeps it), a local directory is copied into the run's `model/` folder, since the directory the user gave may
move, change or be deleted after the run, and a run directory is self-contained (docs/reliability.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mikiwame.framework.errors import RunDirectoryError
from mikiwame.framework.peft_method import is_hub_id, resolve_base
from mikiwame.framework.predict import refuse_unsafe_model_dir


def keep_model(model: Any, tokenizer: Any, spec: str, model_dir: Path, folder: str) -> str:
    """What the model's record names: `spec` when it is a hub id (and no local folder of that name), else
    `model/<folder>`, relative to the run directory, where the model and tokenizer were saved."""
    if is_hub_id(spec) and not Path(spec).expanduser().exists():
        return spec
    target = model_dir / folder
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return f"{model_dir.name}/{folder}"


def kept_model(model_dir: Path, reference: Any, record: Path) -> str:
    """Where to load a kept model from: its folder inside the run (refused when it leaves the run, or when its
    config or tokenizer settings ask for remote code, kernels or MeCab options) or its hub id. `record` is the
    file that names it, for the message."""
    if not isinstance(reference, str) or not reference:
        raise RunDirectoryError(
            f"{record} names no model to load ({reference!r})",
            fix="restore the file from the original run directory, or re-run the training",
        )
    resolved = resolve_base(model_dir.parent, reference)
    assert resolved is not None  # a non-empty name resolves to a name or a path
    refuse_unsafe_model_dir(Path(resolved))
    return resolved
