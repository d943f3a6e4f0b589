"""Shared fixtures: tiny runs on the bundled headlines built in seconds, the recipe and CLI run as a user runs
them (subprocesses), small labelled files written by the tests themselves, and the shared corpora (read from a
path, skipped with a reason when absent)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from mikiwame.framework.config import RunConfig
from mikiwame.framework.runner import run

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "lora_headlines.py"
SHARED_ENV = "MIKIWAME_SHARED_DATA"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):  # two workers on two cores: one thread each, for the subprocesses too
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
# Small models and few steps: every CLI run here finishes in seconds on 2 cores.
TINY = ["--model", "tiny", "--epochs", "1", "--tiny-hidden", "32", "--tiny-heads", "2", "--tiny-vocab-size", "300"]

# Texts written for these tests (not taken from any corpus): three labels, distinct wording per label.
TOPICS = {
    "sports": ["選手が試合で勝利した", "チームが優勝を決めた", "監督が次の試合を語る", "代表がゴールを決めた"],
    "economy": ["株価が大きく上昇した", "日銀が金利を据え置く", "円安で輸出が伸びた", "企業の決算が発表された"],
    "weather": ["明日は全国的に雨の予報", "台風が列島に接近する", "猛暑日が続く見込み", "週末は晴れて気温が上がる"],
}


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
    return RunConfig.of(**values)


def benchmark_module(name: str):
    """benchmarks/NAME.py imported (the benchmarks are scripts, not a package): their data generators."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def labelled_rows(per_label: int = 12) -> list[tuple[str, str]]:
    """(text, label) rows, every text unique: a topic sentence numbered by its place."""
    rows = []
    for label, sentences in TOPICS.items():
        for i in range(per_label):
            rows.append((f"{sentences[i % len(sentences)]}({i + 1}件目)", label))
    return rows


def write_vector_table(path: Path, texts: Iterable[str], dim: int = 16, seed: int = 0) -> Path:
    """A word2vec text file standing in for pre-trained vectors (no download in tests): a seeded random vector
    for every MeCab word of `texts`, most frequent first as such files are sorted."""
    from mikiwame.plugins.models.tiny import mecab_words

    words = mecab_words()
    counts = Counter(w for text in texts for w in words.tokenize(text))
    rng = np.random.default_rng(seed)
    lines = [f"{len(counts)} {dim}"]
    for word, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(" ".join([word, *(f"{x:.6f}" for x in rng.standard_normal(dim))]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _subprocess(command: list[str], env: dict[str, str] | None, cwd: Path | None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=cwd or REPO, timeout=600)


def run_recipe(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The recipe exactly as a user runs it, in a fresh interpreter."""
    return _subprocess([sys.executable, str(RECIPE), *args], env, cwd)


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The `mikiwame` command in a fresh interpreter."""
    return _subprocess([sys.executable, "-m", "mikiwame.framework.cli", *args], env, cwd)


def save_sentiment_classifier(directory: Path, texts: Iterable[str]) -> Path:
    """A tiny BertForSequenceClassification saved as a hub model is, with id2label NEGATIVE/POSITIVE and a
    vocabulary from `texts`: an off-the-shelf model for `--model pipeline` or `--model DIR`."""
    from transformers import BertConfig, BertForSequenceClassification

    from mikiwame.plugins.models.tiny import build_vocabulary, japanese_tokenizer

    tokenizer = japanese_tokenizer(build_vocabulary(list(texts), 300))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"},
                        label2id={"NEGATIVE": 0, "POSITIVE": 1})  # fmt: skip
    torch.manual_seed(3)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def finished_runs(output_dir: Path) -> list[Path]:
    if not output_dir.exists():
        return []
    return sorted(p for p in output_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """On 2 shared cores, torch's default 2 threads make tiny models many times slower than one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def shared_data() -> Path:
    """MIKIWAME_SHARED_DATA, else ../shared/data beside the repository."""
    return Path(os.environ.get(SHARED_ENV) or REPO.parent / "shared" / "data")


def shared_file(relative: str) -> Path:
    path = shared_data() / relative
    if not path.exists():
        pytest.skip(f"shared corpus {path} is absent (set {SHARED_ENV} or put the corpora at ../shared/data)")
    return path


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    return run(tiny_config(tmp_path_factory.mktemp("runs"), epochs=3))


@pytest.fixture(scope="session")
def lora_run(tmp_path_factory) -> Path:
    return run(tiny_config(tmp_path_factory.mktemp("runs"), peft="lora", merge=True, lr=5e-3))
