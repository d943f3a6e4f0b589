"""A run directory that exists under its final name only when complete.

Everything is written under `runs/.NAME.partial/` and renamed to `runs/NAME/` at the end. A user error
removes the partial directory; a crash or Ctrl-C after a checkpoint keeps it (to `--resume` from) under its
partial name, which never looks finished.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from .errors import MikiwameError, RunDirectoryError

COMPLETE_MARKER = "metrics.json"


class RunDirectory:
    def __init__(self, output_dir: Path, recipe: str, stamp: str | None = None) -> None:
        stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{recipe}"
        name, k = base, 1
        while (output_dir / name).exists() or (output_dir / f".{name}.partial").exists():
            k += 1
            name = f"{base}-{k}"
        self.final = output_dir / name
        self.path = output_dir / f".{name}.partial"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def create(self) -> None:
        self.path.mkdir(parents=True)

    def write_json(self, relative: str, data: Any) -> Path:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=_jsonable) + "\n", encoding="utf-8")
        return target

    def finish(self) -> Path:
        self.path.rename(self.final)
        return self.final

    def abandon(self, err: BaseException) -> str | None:
        """Remove the partial directory unless it holds a checkpoint worth resuming; say what happened."""
        if not self.path.exists():
            return None
        kept = sorted(self.checkpoints.glob("step-*")) if self.checkpoints.exists() else []
        if kept and not isinstance(err, MikiwameError):
            return f"partial run kept at {self.path}; continue with --resume {kept[-1]}"
        shutil.rmtree(self.path, ignore_errors=True)
        return None


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def is_finished(path: Path) -> bool:
    return not path.name.endswith(".partial") and (path / COMPLETE_MARKER).is_file()


def require_finished(path: Path) -> Path:
    """A finished run; given the folder runs are written to (`runs/`, an `--output-dir`), its newest finished
    run, so `mikiwame report runs` works without copying a time-stamped name."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirectoryError(f"run directory {path} does not exist", fix="give a folder under runs/")
    runs = [] if is_finished(path) else [p for p in path.iterdir() if p.is_dir() and is_finished(p)]
    if runs:  # metrics.json is the last file a run writes before its directory gets its final name
        return max(runs, key=lambda run: (run / COMPLETE_MARKER).stat().st_mtime_ns)
    if not is_finished(path):
        raise RunDirectoryError(
            f"{path} is not a finished run (no {COMPLETE_MARKER})",
            fix="give a finished run, or --resume its last checkpoint",
        )
    return path
