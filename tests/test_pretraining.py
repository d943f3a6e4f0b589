"""Domain pre-training: whole-word masking on MeCab words, blocks that never cut a word, the recipe writing a
model directory that `--model DIR` fine-tunes, and the livedoor bodies of the training split only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from mikiwame.plugins.models.tiny import japanese_tokenizer
from mikiwame.studies.pretraining import (
    IGNORE,
    MaskedPositionsOnly,
    PretrainingBudget,
    WholeWordMasker,
    build_language_model,
    corpus_blocks,
    pretrain,
)

from .conftest import write_vector_table

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MIKIWAME_SHARED_DATA", REPO.parent / "shared" / "data"))
LIVEDOOR = SHARED / "livedoor" / "ldcc-20140209.tar.gz"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TEXTS = ["ペンギンが東京の水族館で泳いだ", "新しいスマートフォンが発売された", "ペンギンとスマートフォン"]


@pytest.fixture(scope="module")
def tokenizer():
    # characters only (no whole words), so most MeCab words become several pieces
    chars = sorted({c for t in TEXTS for c in t})
    return japanese_tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)])


def test_whole_word_masking_masks_every_piece_of_a_chosen_word_and_nothing_else(tokenizer):
    masker = WholeWordMasker(tokenizer, probability=0.3, seed=0)
    ids = tokenizer(TEXTS[0])["input_ids"]
    words = masker.word_ids(ids)
    assert words[0] == words[-1] == -1  # [CLS] and [SEP] are never words
    assert max(np.bincount([w for w in words if w >= 0])) > 1  # the test needs multi-piece words
    for _ in range(50):
        inputs, labels = masker.mask(ids)
        chosen = {w for w, label in zip(words, labels, strict=True) if label != IGNORE}
        assert chosen and -1 not in chosen
        for position, (w, label) in enumerate(zip(words, labels, strict=True)):
            assert (label != IGNORE) == (w in chosen)  # a chosen word is masked whole, the rest untouched
            if label == IGNORE:
                assert inputs[position] == ids[position]
            else:
                assert label == ids[position]
        assert sum(label != IGNORE for label in labels) >= round(0.3 * (len(ids) - 2))


def test_whole_word_masking_rates(tokenizer):
    masker = WholeWordMasker(tokenizer, probability=0.15, seed=1)
    ids = tokenizer(" ".join(TEXTS * 20))["input_ids"]
    outcomes = [masker.mask(ids) for _ in range(30)]
    chosen = [(i, x) for inputs, labels in outcomes for i, x in zip(inputs, labels, strict=True) if x != IGNORE]
    share = len(chosen) / (30 * (len(ids) - 2))
    assert 0.15 <= share < 0.2
    assert 0.7 < np.mean([i == tokenizer.mask_token_id for i, _ in chosen]) < 0.9  # 80% become [MASK]


def test_blocks_fit_and_never_start_inside_a_word(tokenizer):
    text = "".join(TEXTS * 5)
    blocks = corpus_blocks([text], tokenizer, block_size=12)
    pieces = tokenizer.tokenize(text)
    assert all(len(b) <= 12 and b[0] == tokenizer.cls_token_id and b[-1] == tokenizer.sep_token_id for b in blocks)
    assert [i for b in blocks for i in b[1:-1]] == tokenizer.convert_tokens_to_ids(pieces)
    assert not any(tokenizer.convert_ids_to_tokens(b[1]).startswith("##") for b in blocks)


def test_scoring_the_masked_positions_only_gives_the_masked_lm_loss(tokenizer):
    model = build_language_model(tokenizer, False, 32, 1, 2, 64, seed=0).eval()
    batch = WholeWordMasker(tokenizer, 0.3, seed=0)([tokenizer(t)["input_ids"] for t in TEXTS])
    full = model(**batch).loss
    assert torch.allclose(MaskedPositionsOnly(model)(**batch).loss, full, atol=1e-5)


def test_the_learning_rate_decays_over_whichever_budget_runs_out_first():
    by_steps = PretrainingBudget(max_steps=1000, warmup_ratio=0.05)
    assert by_steps.warmup_steps() == 50
    assert by_steps.lr_factor(0, 0.0) == pytest.approx(1 / 50)  # warming up
    assert by_steps.lr_factor(500, 1e6) == pytest.approx(0.5)  # no time limit: the steps decide
    by_clock = PretrainingBudget(max_steps=1000, max_seconds=60.0, warmup_ratio=0.05)
    assert by_clock.lr_factor(100, 30.0) == pytest.approx(0.5)  # half the time gone after a tenth of the steps
    assert by_clock.lr_factor(100, 60.0) == 0.0  # the clock ran out: annealed, not stopped at the peak
    assert PretrainingBudget(max_steps=100_000).warmup_steps() == 100  # a big step count must not warm up forever


def test_pretraining_lowers_the_masked_lm_loss(tokenizer):
    model = build_language_model(tokenizer, False, 32, 1, 2, 64, seed=0)
    blocks = [tokenizer(t)["input_ids"] for t in TEXTS * 8]
    masker = WholeWordMasker(tokenizer, 0.3, seed=0)
    report = pretrain(model.train(), blocks, masker, PretrainingBudget(60, 1e9, 8, 5e-3))
    assert report.steps == 60 and report.loss_window == 15  # the first and last windows do not overlap
    assert report.last_loss < report.first_loss - 1.0, report


def _pretrain(tmp_path: Path, *extra: str) -> Path:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS * 4) + "\n", encoding="utf-8")
    out = tmp_path / ("gpt" if "--causal" in extra else "mlm")
    cmd = [sys.executable, str(REPO / "recipes/pretrain_mlm.py"), "--text-from", str(corpus), "--output-dir", str(out),
           "--hidden", "32", "--heads", "2", "--max-steps", "3", "--batch-size", "4", *extra]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.mark.slow
def test_pretrained_directory_fine_tunes_with_model_dir(tmp_path):
    mlm = _pretrain(tmp_path)
    record = json.loads((mlm / "pretraining.json").read_text())
    assert record["report"]["steps"] == 3 and record["base"] == "from scratch"
    cmd = [sys.executable, str(REPO / "recipes/lora_headlines.py"), "--model", str(mlm), "--epochs", "1",
           "--train-size", "24", "--output-dir", str(tmp_path / "runs")]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = next((tmp_path / "runs").iterdir())
    info = json.loads((run_dir / "model_info.json").read_text())
    assert info["pretrained"] is True and info["peft"] == "lora" and info["vocabulary"] == record_vocab(mlm)


@pytest.mark.slow
def test_pretraining_can_start_from_word_vectors(tmp_path):
    table = write_vector_table(tmp_path / "vectors.txt", TEXTS, dim=8)
    mlm = _pretrain(tmp_path, "--init-vectors", str(table))
    vectors = json.loads((mlm / "pretraining.json").read_text())["word_vectors"]
    assert vectors["name"] == str(table) and vectors["initialised"] > 0


def record_vocab(directory: Path) -> int:
    return len((directory / "vocab.txt").read_text(encoding="utf-8").splitlines())


@pytest.mark.slow
def test_causal_pretraining_writes_a_causal_lm(tmp_path):
    gpt = _pretrain(tmp_path, "--causal")
    assert type(AutoModelForCausalLM.from_pretrained(gpt)).__name__ == "GPT2LMHeadModel"


@pytest.mark.slow
@pytest.mark.skipif(not LIVEDOOR.is_file(), reason=f"livedoor archive not found at {LIVEDOOR}")
def test_livedoor_bodies_come_from_the_training_split_only():
    from mikiwame.studies.livedoor_bodies import headline_splits, read_articles, training_bodies

    bodies, counts = training_bodies(LIVEDOOR, seed=42)
    splits = headline_splits(LIVEDOOR, 42, None)
    held_out = splits["validation"] | splits["test"]
    by_body = {a.body: a for a in read_articles(LIVEDOOR)}
    assert not any(by_body[b].headline in held_out for b in bodies)
    assert counts["articles_used"] == len(bodies)
    assert 0.75 < len(bodies) / (counts["articles_used"] + counts["articles_left_out"]) < 0.81
    # several seeds (one base for the runs of each): only bodies in the training split of every seed
    both, _ = training_bodies(LIVEDOOR, seed=[42, 1])
    other = headline_splits(LIVEDOOR, 1, None)
    assert set(both) < set(bodies) and not any(by_body[b].headline in other["validation"] | other["test"] for b in both)
