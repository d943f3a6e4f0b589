"""Tiny runs the analyzer tests share: trained once per session on the bundled headlines, with a word planted
in 90% of one label's training texts (the effect token-stats must find)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
import torch

from mikiwame.framework.config import RunConfig
from mikiwame.framework.findings import SCHEMA_VERSION as FINDINGS_SCHEMA
from mikiwame.framework.findings import Finding
from mikiwame.framework.runner import run

from ..conftest import REPO, tiny_config

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


def analyzer_config(output_dir: Path, **overrides) -> RunConfig:
    """The shared tiny run, on the full training split with a learning rate at which it learns in a few epochs."""
    values = dict(train_size=None, epochs=3, lr=3e-3, batch_size=16, tiny_vocab_size=2000, max_length=48, patience=10)
    return tiny_config(output_dir, **{**values, **overrides})


@pytest.fixture(scope="session")
def planted_run(tmp_path_factory) -> Path:
    """3 epochs on the planted headlines, with per-epoch training predictions and step evaluations."""
    root = tmp_path_factory.mktemp("planted")
    data = write_tsv(planted_rows(), root / "planted.tsv")
    config = analyzer_config(
        root / "runs",
        data=str(data),
        track_train=True,
        eval_every=6,
        train_size=180,
        analyze=["errors", "token-stats", "curves", "calibration"],
    )
    return run(config)


def saved_findings(run_dir: Path) -> list[Finding]:
    """RUN_DIR/findings.json, as every run writes it."""
    document = json.loads((run_dir / "findings.json").read_text(encoding="utf-8"))
    assert document["schema_version"] == FINDINGS_SCHEMA
    return [Finding.from_dict(f) for f in document["findings"]]


def assert_findings_rules(findings: list[Finding]) -> None:
    """The issue's two rules: no fact without n and an interval or a p-value; no possibility without the
    experiment that decides it, worded as a possibility in both languages."""
    assert findings
    for f in findings:
        if f.kind == "fact":
            assert f.evidence, f
            assert all(e.n > 0 and (e.interval is not None or e.p is not None) for e in f.evidence), f
            assert "可能性" not in f.claim["ja"] and " may " not in f.claim["en"], f
        else:
            assert f.kind == "possibility" and f.decide_by, f
            assert "可能性" in f.claim["ja"] and " may " in f.claim["en"], f
