"""Shared fixtures: tiny runs on the bundled headlines, built in seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mikiwame.framework.config import RunConfig
from mikiwame.framework.runner import run

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "lora_headlines.py"
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def tiny_config(output_dir: Path, **overrides) -> RunConfig:
    """A 2-layer, hidden-32 BERT on 120 bundled headlines: a whole run takes a few seconds."""
    values = dict(
        model="tiny",
        peft="full",
        task="headlines",
        epochs=2,
        batch_size=8,
        eval_batch_size=32,
        tiny_layers=2,
        tiny_hidden=32,
        tiny_heads=2,
        train_size=120,
        output_dir=str(output_dir),
        recipe="test",
    )
    values.update(overrides)
    return RunConfig(**values)


def run_recipe(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The recipe as a user runs it, in a fresh process."""
    return subprocess.run(
        [sys.executable, str(RECIPE), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or REPO,
        timeout=600,
    )


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    return run(tiny_config(tmp_path_factory.mktemp("runs"), epochs=3))


@pytest.fixture(scope="session")
def lora_run(tmp_path_factory) -> Path:
    return run(tiny_config(tmp_path_factory.mktemp("runs"), peft="lora", merge=True, lr=5e-3))
