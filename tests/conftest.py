"""Shared fixtures: the recipe run as a user runs it (a subprocess), small labelled files written by the tests
themselves, and the shared corpora (read from a path, skipped with a reason when absent)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "lora_headlines.py"
SHARED_ENV = "MIKIWAME_SHARED_DATA"
# Small models and few steps: every CLI run here finishes in seconds on 2 cores.
TINY = ["--model", "tiny", "--epochs", "1", "--tiny-hidden", "32", "--tiny-heads", "2", "--tiny-vocab-size", "300"]

# Texts written for these tests (not taken from any corpus): three labels, distinct wording per label.
TOPICS = {
    "sports": ["選手が試合で勝利した", "チームが優勝を決めた", "監督が次の試合を語る", "代表がゴールを決めた"],
    "economy": ["株価が大きく上昇した", "日銀が金利を据え置く", "円安で輸出が伸びた", "企業の決算が発表された"],
    "weather": ["明日は全国的に雨の予報", "台風が列島に接近する", "猛暑日が続く見込み", "週末は晴れて気温が上がる"],
}


def labelled_rows(per_label: int = 12) -> list[tuple[str, str]]:
    """(text, label) rows, every text unique: a topic sentence numbered by its place."""
    rows = []
    for label, sentences in TOPICS.items():
        for i in range(per_label):
            rows.append((f"{sentences[i % len(sentences)]}({i + 1}件目)", label))
    return rows


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_recipe(*args: str, cwd: Path) -> Result:
    """The recipe exactly as a user runs it, in a fresh interpreter."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, str(RECIPE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    return Result(done.returncode, done.stdout, done.stderr)


def run_cli(*args: str, cwd: Path) -> Result:
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "mikiwame.framework.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def finished_runs(output_dir: Path) -> list[Path]:
    return (
        sorted(p for p in output_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        if output_dir.exists()
        else []
    )


def shared_data() -> Path:
    """MIKIWAME_SHARED_DATA, else ../shared/data beside the repository."""
    return Path(os.environ.get(SHARED_ENV) or REPO.parent / "shared" / "data")


def shared_file(relative: str) -> Path:
    path = shared_data() / relative
    if not path.exists():
        pytest.skip(f"shared corpus {path} is absent (set {SHARED_ENV} or put the corpora at ../shared/data)")
    return path
