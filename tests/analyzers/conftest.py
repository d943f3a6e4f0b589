"""Tiny runs the analyzer tests share: trained once per session on the bundled headlines, with a word planted
in 90% of one label's training texts (the effect token-stats must find)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch

from mikiwame.framework.config import RunConfig
from mikiwame.framework.runner import run

REPO = Path(__file__).resolve().parents[2]
HEADLINES = REPO / "data" / "headlines" / "headlines.tsv"
PLANTED_WORD = "猫"
PLANTED_LABEL = "sports"
PLANTED_SHARE = 0.9

# Several processes share 2 cores while tests run; one thread each is 3-4x faster than oversubscribing.
torch.set_num_threads(1)


def read_headlines() -> list[dict[str, str]]:
    with HEADLINES.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def planted_rows(seed: int = 0) -> list[dict[str, str]]:
    """The bundled rows with PLANTED_WORD prefixed to 90% of PLANTED_LABEL's training texts."""
    rows = read_headlines()
    targets = [r for r in rows if r["split"] == "train" and r["label"] == PLANTED_LABEL]
    chosen = random.Random(seed).sample(targets, round(PLANTED_SHARE * len(targets)))
    for r in chosen:
        r["text"] = f"{PLANTED_WORD}、{r['text']}"
    return rows


def write_tsv(rows: list[dict[str, str]], path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    return path


def tiny_config(output_dir: Path, **overrides) -> RunConfig:
    values = dict(
        recipe="analyzer_test",
        task="headlines",
        model="tiny",
        peft="full",
        tiny_layers=2,
        tiny_hidden=32,
        tiny_heads=2,
        tiny_vocab_size=2000,
        epochs=3,
        lr=3e-3,
        batch_size=16,
        patience=10,
        max_length=48,
        output_dir=str(output_dir),
    )
    values.update(overrides)
    return RunConfig(**values)


@pytest.fixture(scope="session")
def planted_run(tmp_path_factory) -> Path:
    """3 epochs on the planted headlines, with per-epoch training predictions and step evaluations."""
    root = tmp_path_factory.mktemp("planted")
    data = write_tsv(planted_rows(), root / "planted.tsv")
    config = tiny_config(
        root / "runs",
        data=str(data),
        track_train=True,
        eval_every=6,
        train_size=180,
        analyze=["errors", "token-stats", "curves", "calibration"],
    )
    return run(config)
