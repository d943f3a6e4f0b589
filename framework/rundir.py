"""A run directory that exists under its final name only when complete.

Everything is written under `runs/.NAME.partial/` and renamed to `runs/NAME/` at the end. The name is
reserved atomically (`mkdir` that fails when the folder exists, then the next suffix), so runs started at the
same second into the same folder never share or delete each other's directory: a run only ever removes the
directory it created itself. A user error removes the partial directory; a crash, Ctrl-C or a diverged loss
keeps it (to inspect, or to `--resume` from its last complete checkpoint) under its partial name, which never
looks finished. docs/reliability.md lists what each failure leaves on disk.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from .checkpoint import PREFIX, is_complete
from .errors import MikiwameError, RunDirectoryError

COMPLETE_MARKER = "metrics.json"
# The live analyzers a finished run still owes: written before the rename, each name removed as its result is
# written, the file removed with the last, so a run stopped during its analyzers says so (`report`, `analyze`).
PENDING_ANALYSES = "analyses_pending.json"


class RunDirectory:
    """`name` (the user's `--name`, checked by config.check_run_name) replaces the time stamp and recipe as
    the base; the atomic reservation and the -2, -3 suffixes are the same for both."""

    def __init__(self, output_dir: Path, recipe: str, stamp: str | None = None, name: str | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.base = name or f"{stamp or time.strftime('%Y%m%d-%H%M%S')}-{recipe}"
        self.created = False
        self._name(1)

    def _name(self, k: int) -> None:
        name = self.base if k == 1 else f"{self.base}-{k}"
        self.final = self.output_dir / name
        self.path = self.output_dir / f".{name}.partial"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def create(self) -> None:
        """Reserve the first free name: neither NAME nor .NAME.partial exists, and our mkdir made the latter."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        k = 1
        while True:
            self._name(k)
            if not self.final.exists():
                try:
                    self.path.mkdir()
                    self.created = True
                    return
                except FileExistsError:
                    pass
            k += 1

    def write_json(self, relative: str, data: Any) -> Path:
        """Strict JSON (a NaN or infinity is refused, never written as a token other readers reject)."""
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, ensure_ascii=False, indent=2, default=_jsonable, allow_nan=False)
        target.write_text(text + "\n", encoding="utf-8")
        return target

    def finish(self) -> Path:
        """Rename to the final name; if another run took it meanwhile, to the next free suffix."""
        k = int(self.final.name.removeprefix(self.base).lstrip("-") or 1)
        while True:
            final = self.output_dir / (self.base if k == 1 else f"{self.base}-{k}")
            if not final.exists():
                try:
                    os.rename(self.path, final)
                    self.final = final
                    return final
                except OSError as err:
                    if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
            k += 1

    def abandon(self, err: BaseException) -> str | None:
        """Remove the partial directory this process created, unless it holds a complete checkpoint worth
        resuming or the error asks to keep it (a diverged loss); say what happened, and which analyses a run
        stopped after its rename still owes."""
        if not self.created:
            return None
        if not self.path.exists():
            pending = self.final / PENDING_ANALYSES  # renamed: stopped during its live analyzers
            if not pending.is_file():
                return None
            names = ",".join(json.loads(pending.read_text(encoding="utf-8"))["analyzers"])
            return f"run {self.final} is trained but its analyses are incomplete: mikiwame analyze {self.final} {names}"
        kept = [p for p in sorted(self.checkpoints.glob(f"{PREFIX}*")) if is_complete(p)]
        if getattr(err, "keeps_partial", False):
            resume = f"; its last complete checkpoint: {kept[-1]}" if kept else ""
            return f"partial run kept at {self.path} (not a finished run){resume}"
        if kept and not isinstance(err, MikiwameError):
            return f"partial run kept at {self.path}; continue with --resume {kept[-1]}"
        shutil.rmtree(self.path, ignore_errors=True)
        return None


def write_pending_analyses(run_dir: Path, names: list[str]) -> None:
    """Record the analyzers `run_dir` still owes (atomically); none: the record is removed."""
    path = Path(run_dir) / PENDING_ANALYSES
    if not names:
        path.unlink(missing_ok=True)
        return
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps({"analyzers": list(names)}) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def inside(run_dir: Path, relative: str | Path, what: str) -> Path:
    """`run_dir / relative` resolved (symlinks followed); refused when it leaves the run directory."""
    root = Path(run_dir).resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        raise RunDirectoryError(
            f"{what} {relative} resolves to {target}, outside the run directory {root}",
            fix="a run directory must be self-contained; do not use a run directory you did not make or check",
        )
    return target


def check_self_contained(run_dir: Path) -> None:
    """Every symbolic link in the run must point inside it: a received run directory could otherwise make a
    report embed, or an analyzer overwrite, any file the user can read or write."""
    root = Path(run_dir).resolve()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            if path.is_symlink():
                inside(root, path.relative_to(root), "the link")


def is_finished(path: Path) -> bool:
    return not path.name.endswith(".partial") and (path / COMPLETE_MARKER).is_file()


def require_finished(path: Path) -> Path:
    """A finished run; given the folder runs are written to (`runs/`, an `--output-dir`), its newest finished
    run, so `mikiwame report runs` works without copying a time-stamped name."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirectoryError(f"run directory {path} does not exist", fix="give a folder under runs/")
    # A symlinked entry is not a run of this folder: followed, `report` would write report.html into its target.
    runs = [] if is_finished(path) else [p for p in path.iterdir() if not p.is_symlink() and is_finished(p)]
    if runs:  # metrics.json is the last file a run writes before its directory gets its final name
        path = max(runs, key=lambda run: (run / COMPLETE_MARKER).stat().st_mtime_ns)
    if not is_finished(path):
        raise RunDirectoryError(
            f"{path} is not a finished run (no {COMPLETE_MARKER})",
            fix="give a finished run, or --resume its last checkpoint",
        )
    check_self_contained(path)
    return path
