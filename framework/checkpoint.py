"""Training checkpoints that mikiwame writes and reads itself: tensors in safetensors, everything else in JSON.

Accelerate's checkpoint loading unpickles (torch's loader with its weights-only guard off), so a checkpoint
received from someone else could run code; nothing here unpickles. A checkpoint holds what the loop needs to continue
bit-exactly: the trained tensors, the optimizer and scheduler state, the loop's progress (epoch, batches done,
history, best weights), and per process its RNG states, Accelerate's accumulation counter and the running
loss sum of the epoch.

A checkpoint is written under a hidden temporary name and renamed to `step-NNNNNN` when every file is in, so
a `step-*` folder is complete; `state.json`, written last, lists each file with its size and SHA-256, which
`read` checks: damage that keeps a file's size (a disk that lied, a tampered copy) is one message naming the file,
never a silent resume. `state.json` itself and each process's JSON are read through the validation layer
(framework/runfiles.py), so a tampered value is one message naming the file and the key.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .errors import RunDirectoryError
from .runfiles import Between, Count, Nullable, Obj, damaged, read_json

if TYPE_CHECKING:
    from collections.abc import Iterable

STATE = "state.json"
TENSORS = "tensors.safetensors"
FORMAT = "mikiwame-checkpoint-1"
PREFIX = "step-"
CHUNK = 1 << 20
# What `read` takes from a checkpoint, as engine.py's save_checkpoint writes it.
PROGRESS = Obj(
    {
        "epoch": Count,
        "batches_done": Count,
        "global_step": Count,
        "best_loss": float | None,
        "best_epoch": Count | None,
        "bad_evals": Count,
        "stopped_early": bool,
        "history": list[dict[str, Any]],
        "step_history": list[dict[str, Any]],
        "train_dynamics": list[dict[str, Any]],
    },
    {"kept_epoch": Count | None, "best_losses": list[float] | None},
)
STATE_SCHEMA = Obj(
    {
        "format": str,
        "files": dict[str, Count],
        "sha256": dict[str, str],
        "identity": Nullable(Obj({"task": str, "labels": list[str], "trainable": dict[str, list[Count]]})),
        "progress": PROGRESS,
        "optimizer": list[dict[str, Any]],
        "scheduler": dict[str, Any],
        "scaler": dict[str, Any] | None,
    }
)
PROCESS_SCHEMA = Obj(
    {
        "python": Annotated[list[Any], Between(3, 3)],
        "numpy": Annotated[list[Any], Between(4, 4)],
        "accelerate_step": Count,
    }
)


def process_file(index: int, suffix: str) -> str:
    return f"process-{index}.{suffix}"


@dataclass
class Identity:
    """What a checkpoint must match to be resumed by this run: the task's labels and the trained tensors."""

    task: str
    labels: list[str]
    trainable: dict[str, list[int]]

    def refusal(self, other: dict[str, Any]) -> str | None:
        if other.get("labels") != self.labels:
            return f"it was trained on task {other.get('task')!r} with labels {other.get('labels')}, not {self.labels}"
        if other.get("trainable") != self.trainable:
            return "its trained tensors (names or shapes) differ from this run's model and PEFT method"
        return None


def rng_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Python, NumPy and torch (CPU and every CUDA device) generator states, as JSON plus tensors."""
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"rng.torch": torch.get_rng_state(), "rng.numpy": torch.from_numpy(np.asarray(keys, dtype=np.int64))}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    info = {"python": [version, list(words), gauss], "numpy": [kind, int(pos), int(has_gauss), float(cached)]}
    return info, tensors


def set_rng_state(info: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    version, words, gauss = info["python"]
    random.setstate((version, tuple(words), gauss))
    kind, pos, has_gauss, cached = info["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor]]:
    """`param_groups` as JSON; every per-parameter state tensor as `optimizer.<index>.<name>`."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            tensors[f"optimizer.{index}.{name}"] = torch.as_tensor(value).detach().contiguous().cpu()
    return state["param_groups"], tensors


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, groups: list[dict[str, Any]], tensors: dict[str, torch.Tensor]
) -> None:
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            per_param.setdefault(int(index), {})[name] = value
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})


def write_json(path: Path, data: Any) -> None:
    """Strict JSON: a NaN or infinity is an error here, never an unreadable file later."""
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def staging_dir(target: Path) -> Path:
    return target.parent / f".{target.name}.tmp"


def is_complete(path: Path) -> bool:
    """Every file `state.json` lists is there with its recorded size."""
    try:
        state = json.loads((path / STATE).read_text(encoding="utf-8"))
        files = state["files"]
        return state.get("format") == FORMAT and all((path / n).stat().st_size == size for n, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def finish(staging: Path, target: Path, state: dict[str, Any]) -> None:
    """Record the files with their sizes and SHA-256, then make the checkpoint visible under its final name in one
    rename."""
    files = sorted(staging.iterdir())
    state["files"] = {p.name: p.stat().st_size for p in files}
    state["sha256"] = {p.name: sha256(p) for p in files}
    state["format"] = FORMAT
    write_json(staging / STATE, state)
    staging.rename(target)


def complete_checkpoint(path: Path) -> tuple[Path, str | None]:
    """The checkpoint to resume from and, when `path` itself is incomplete (a run killed while saving it), the
    message that names the older complete one used instead. `path` may also be a run's `checkpoints` folder or
    its `.partial` run directory: its newest complete checkpoint."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirectoryError(
            f"checkpoint {path} does not exist",
            where="--resume",
            fix="give a folder like runs/.NAME.partial/checkpoints/step-000040",
        )
    if path.name.startswith(PREFIX):
        folder, wanted = path.parent, path
    else:
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        wanted = None
    if wanted is not None and is_complete(wanted):
        return wanted, None
    candidates = sorted(p for p in folder.glob(f"{PREFIX}*") if wanted is None or p.name < wanted.name)
    complete = [p for p in candidates if is_complete(p)]
    if not complete:
        raise RunDirectoryError(
            f"{path} holds no complete checkpoint (a mikiwame checkpoint has a {STATE} listing its files)",
            where="--resume",
            fix="start the run afresh, or give a checkpoint folder written by mikiwame",
        )
    note = None
    if wanted is not None:
        note = f"checkpoint {wanted} is incomplete (the run was stopped while saving it); resuming from {complete[-1]}"
    return complete[-1], note


def verify(path: Path, state: dict[str, Any], names: Iterable[str]) -> None:
    """Each named file's SHA-256 as state.json recorded it: one message naming the first file that differs."""
    for name in names:
        recorded = state["sha256"].get(name)
        if recorded is None:
            raise damaged(path / STATE, f"it records no SHA-256 of {name}", fix=RESTART)
        if sha256(path / name) != recorded:
            what = f"{name} differs from the SHA-256 recorded when it was written (same size, other bytes)"
            raise damaged(path / name, what, fix=RESTART)


RESTART = "resume from an older checkpoint of the run (--resume its step-* folder), or start the run afresh"


def read(path: Path, process_index: int) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """The shared state and tensors, and this process's own state (its RNG tensors merged into the tensors), each
    file checked against its recorded SHA-256 before it is loaded."""
    if not is_complete(path):
        raise RunDirectoryError(
            f"checkpoint {path} is incomplete or not a mikiwame checkpoint",
            where="--resume",
            fix="give a complete checkpoint folder (its state.json lists its files)",
        )
    state = read_json(path / STATE, STATE_SCHEMA)
    own = path / process_file(process_index, "json")
    if not own.is_file():
        raise RunDirectoryError(
            f"checkpoint {path} was written by fewer processes than this run has",
            where="--resume",
            fix="resume with the number of processes the run was started with",
        )
    verify(path, state, [TENSORS, own.name, process_file(process_index, "safetensors")])
    tensors = load_file(path / TENSORS)
    tensors.update(load_file(path / process_file(process_index, "safetensors")))
    return state, tensors, read_json(own, PROCESS_SCHEMA)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, path)


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
