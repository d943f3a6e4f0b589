"""The received run the hostile-input tests damage: one tiny run per session with every analyzer's JSON, copied
per case (a case never changes the original)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mikiwame.framework.runner import run

from ..conftest import tiny_config

ANALYZERS = ["errors", "token-stats", "curves", "calibration", "shortcuts", "entity-bias"]


@pytest.fixture(scope="session")
def analysed_run(tmp_path_factory) -> Path:
    """2 epochs on 60 headlines with per-epoch training predictions, every analyzer live (a few seconds each)."""
    config = tiny_config(
        tmp_path_factory.mktemp("analysed"),
        epochs=2,
        train_size=60,
        track_train=True,
        analyze=ANALYZERS,
        shortcuts_max_texts=24,
        shortcuts_steps=4,
        entity_bias_max_texts=48,
    )
    return run(config)


def received_copy(run_dir: Path, into: Path) -> Path:
    """A copy of the run without its checkpoints (nothing that reads a finished run opens them)."""
    return Path(shutil.copytree(run_dir, into / run_dir.name, ignore=shutil.ignore_patterns("checkpoints")))


def set_key(path: Path, keys: tuple[Any, ...], value: Any) -> None:
    """Replace the value at `keys` (object keys and list indices) in the JSON file at `path`; the key must be
    there, so a case never silently damages nothing."""
    data = json.loads(path.read_text(encoding="utf-8"))
    inner = data
    for key in keys[:-1]:
        inner = inner[key]
    assert keys[-1] in inner if isinstance(inner, dict) else keys[-1] < len(inner), keys
    inner[keys[-1]] = value
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
