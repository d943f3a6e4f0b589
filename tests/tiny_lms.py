"""Tiny language models trained for a few seconds on a planted pattern, for the prompt-scorer tests: a headline
of class `sports` always contains 選手 and one of class `economy` always contains 市場, and the label word
follows the text. A scorer that reads the model correctly must recover the planted label."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

from mikiwame.plugins.models.tiny import build_vocabulary, japanese_tokenizer
from mikiwame.studies.pretraining import (
    PretrainingBudget,
    WholeWordMasker,
    build_language_model,
    causal_batch,
    pretrain,
)

LABEL_WORDS = {"economy": "株価", "sports": "野球"}
KEY_WORDS = {"economy": "市場", "sports": "選手"}
FILLERS = ["東京", "大阪", "今日", "新た", "大きな", "話題", "速報", "発表", "注目", "記録"]
CLOZE_TEMPLATE = "「{text}」これは[MASK]のニュースです。"
ICL_FORMAT = {
    "demonstration": "見出し:{text} 分野:{label}",
    "query": "見出し:{text} 分野:",
    "separator": " 。 ",
    "reasoning_query": "見出し:{text} 理由:",
    "answer": " 分野:",
}


def planted_texts(label: str) -> list[str]:
    """Two filler words, then the class's key word, e.g. 東京で記録の選手."""
    return [f"{a}で{b}の{KEY_WORDS[label]}" for a, b in itertools.permutations(FILLERS, 2)]


def train_and_held_out() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(text, label) pairs; every 8th filler pair is held out, so held-out texts are new combinations."""
    pairs = [(t, y) for y in LABEL_WORDS for t in planted_texts(y)]
    return [p for i, p in enumerate(pairs) if i % 8], [p for i, p in enumerate(pairs) if not i % 8]


def _tokenizer(sentences: list[str]):
    return japanese_tokenizer(build_vocabulary(sentences + ["N/A"], 400))


def masked_lm(directory: Path, steps: int = 400) -> Path:
    """A 2-layer BERT (hidden 64) trained by whole-word masking on filled cloze templates."""
    train, _ = train_and_held_out()
    sentences = [CLOZE_TEMPLATE.replace("[MASK]", LABEL_WORDS[y]).format(text=t) for t, y in train]
    tokenizer = _tokenizer(sentences)
    blocks = [tokenizer(s)["input_ids"] for s in sentences]
    model = build_language_model(tokenizer, False, 64, 2, 2, 64, seed=0)
    pretrain(model.train(), blocks, WholeWordMasker(tokenizer, 0.3, seed=0), PretrainingBudget(steps, lr=5e-3, seed=0))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def causal_lm(directory: Path, steps: int = 400) -> Path:
    """A 2-layer GPT-2 (hidden 64) trained on every demonstration alone and on prompts of two or three."""
    train, _ = train_and_held_out()
    rng = random.Random(0)
    demo = ICL_FORMAT["demonstration"]
    sentences = [demo.format(text=t, label=LABEL_WORDS[y]) for t, y in train]
    for _ in range(200):
        items = rng.sample(train, rng.randint(2, 3))
        sentences.append(ICL_FORMAT["separator"].join(demo.format(text=t, label=LABEL_WORDS[y]) for t, y in items))
    tokenizer = _tokenizer(sentences + [ICL_FORMAT["reasoning_query"], ICL_FORMAT["answer"]])
    blocks = [tokenizer(s)["input_ids"] for s in sentences]
    model = build_language_model(tokenizer, True, 64, 2, 2, 128, seed=0)
    pad = tokenizer.pad_token_id or 0
    pretrain(model.train(), blocks, lambda b: causal_batch(b, pad), PretrainingBudget(steps, lr=5e-3, seed=0))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def prompt_file(path: Path) -> Path:
    spec = {
        "templates": {"planted": CLOZE_TEMPLATE, "unrelated": "[MASK]。{text}"},
        "verbalizers": {label: [word] for label, word in LABEL_WORDS.items()},
        "icl": ICL_FORMAT,
    }
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    return path


def task_file(path: Path) -> Path:
    """A headlines-format TSV of the planted texts: training pairs for train, held-out pairs for test/validation."""
    train, held = train_and_held_out()
    rows = ["id\tlabel\tsplit\ttext"]
    for i, (text, label) in enumerate(train):
        rows.append(f"t{i}\t{label}\ttrain\t{text}")
    for i, (text, label) in enumerate(held):
        rows.append(f"h{i}\t{label}\t{'validation' if i % 2 else 'test'}\t{text}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path
