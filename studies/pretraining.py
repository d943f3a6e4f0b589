"""Domain pre-training on unlabeled text: a small BERT by masked LM with whole-word masking, or a small GPT-2
by next-token prediction, from scratch or continuing a given model; saved as a model directory (tokenizer
included) that `--model DIR` fine-tunes and `--cloze-lm` / `--icl-lm` score with.

Whole-word masking is done here on word ids: transformers 5 dropped `DataCollatorForWholeWordMask`, and the
`whole_word_mask=True` of `DataCollatorForLanguageModeling` needs a fast tokenizer's offsets, which the MeCab
`BertJapaneseTokenizer` does not have. A WordPiece token that does not start with `##` starts a word, so with
that tokenizer a word is one MeCab word.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import (
    BertConfig,
    BertForMaskedLM,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
)

PRETRAINING_FILE = "pretraining.json"
IGNORE = -100
LOSS_WINDOW = 50


def word_starts(pieces: Sequence[str]) -> list[bool]:
    return [not p.startswith("##") for p in pieces]


def corpus_blocks(texts: Iterable[str], tokenizer: Any, block_size: int) -> list[list[int]]:
    """Each text cut into blocks of at most `block_size` tokens ([CLS] ... [SEP]), never inside a word."""
    room = block_size - 2
    blocks = []
    for text in texts:
        pieces = tokenizer.tokenize(text)
        ids = tokenizer.convert_tokens_to_ids(pieces)
        starts = word_starts(pieces)
        begin = 0
        while begin < len(ids):
            end = min(begin + room, len(ids))
            while end < len(ids) and not starts[end] and end > begin + 1:
                end -= 1
            blocks.append([tokenizer.cls_token_id, *ids[begin:end], tokenizer.sep_token_id])
            begin = end
    return blocks


class WholeWordMasker:
    """BERT's masking at word level: words are drawn in random order until `probability` of the tokens are
    chosen; every piece of a chosen word is then replaced by [MASK] (80%), a random token (10%) or kept (10%).
    Labels are the original ids at chosen positions and -100 elsewhere."""

    def __init__(self, tokenizer: Any, probability: float = 0.15, seed: int = 0) -> None:
        self.tokenizer, self.probability = tokenizer, probability
        self.rng = np.random.default_rng(seed)
        vocab = tokenizer.get_vocab()
        self.continuation = np.zeros(max(vocab.values()) + 1, dtype=bool)
        for piece, i in vocab.items():
            self.continuation[i] = piece.startswith("##")
        self.special = set(tokenizer.all_special_ids)

    def word_ids(self, ids: Sequence[int]) -> list[int]:
        """Word index per token (-1 for special tokens)."""
        out, word = [], -1
        for i in ids:
            if i in self.special:
                out.append(-1)
                continue
            if not self.continuation[i] or word < 0:
                word += 1
            out.append(word)
        return out

    def mask(self, ids: Sequence[int]) -> tuple[list[int], list[int]]:
        words = np.asarray(self.word_ids(ids))
        n_words = words.max() + 1
        chosen = np.zeros(len(ids), dtype=bool)
        goal = max(1, round(self.probability * int((words >= 0).sum())))
        for w in self.rng.permutation(n_words):
            if chosen.sum() >= goal:
                break
            chosen |= words == w
        inputs, labels = list(ids), [IGNORE] * len(ids)
        for pos in np.flatnonzero(chosen).tolist():
            labels[pos] = ids[pos]
            draw = self.rng.random()
            if draw < 0.8:
                inputs[pos] = self.tokenizer.mask_token_id
            elif draw < 0.9:
                inputs[pos] = int(self.rng.integers(len(self.continuation)))
        return inputs, labels

    def __call__(self, blocks: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        pairs = [self.mask(b) for b in blocks]
        return pad_batch([p[0] for p in pairs], [p[1] for p in pairs], self.tokenizer.pad_token_id or 0)


def causal_batch(blocks: Sequence[Sequence[int]], pad: int) -> dict[str, torch.Tensor]:
    """Next-token prediction: the labels are the inputs (the model shifts them); padding is ignored."""
    return pad_batch([list(b) for b in blocks], [list(b) for b in blocks], pad)


def pad_batch(inputs: list[list[int]], labels: list[list[int]], pad: int) -> dict[str, torch.Tensor]:
    width = max(map(len, inputs))
    return {
        "input_ids": torch.tensor([s + [pad] * (width - len(s)) for s in inputs]),
        "attention_mask": torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in inputs]),
        "labels": torch.tensor([s + [IGNORE] * (width - len(s)) for s in labels]),
    }


def build_language_model(
    tokenizer: Any, causal: bool, hidden: int, layers: int, heads: int, max_positions: int, seed: int
) -> PreTrainedModel:
    """A randomly initialised small BERT (masked LM) or GPT-2 (causal LM) over the tokenizer's vocabulary."""
    torch.manual_seed(seed)
    if causal:
        gpt2 = GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=max_positions,
            n_embd=hidden,
            n_layer=layers,
            n_head=heads,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        return GPT2LMHeadModel(gpt2)
    bert = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=max(512, max_positions),
        pad_token_id=tokenizer.pad_token_id or 0,
    )
    return BertForMaskedLM(bert)


class MaskedPositionsOnly(torch.nn.Module):
    """A BERT masked LM whose vocabulary head scores the masked positions only. The loss reads nothing else, and
    in a small model the head is most of the work: per token it costs vocabulary x hidden (8,000 x 128) against
    about 12 x hidden^2 per layer, so scoring the 15% masked tokens alone makes a step several times cheaper.
    Same loss as `BertForMaskedLM(**batch).loss`; wrapping (not a custom loop) keeps the accelerator's
    distributed wrapper around the whole computation."""

    def __init__(self, model: BertForMaskedLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> Any:
        hidden = self.model.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        chosen = labels != IGNORE
        scores = self.model.cls(hidden[chosen])
        return MaskedOutput(torch.nn.functional.cross_entropy(scores, labels[chosen]))


@dataclass
class MaskedOutput:
    loss: torch.Tensor


@dataclass
class PretrainingBudget:
    max_steps: int = 1000
    max_seconds: float = math.inf
    batch_size: int = 32
    lr: float = 5e-4
    warmup_ratio: float = 0.05
    seed: int = 42
    max_warmup_steps: int = 100  # a time budget with a large max_steps must not spend it warming up

    def warmup_steps(self) -> int:
        return max(1, min(self.max_warmup_steps, int(self.warmup_ratio * self.max_steps)))

    def lr_factor(self, done: int, seconds: float) -> float:
        """Linear warm-up, then linear decay to 0 over whichever budget runs out first: a time budget that ends
        long before `max_steps` must still anneal (decaying over the steps alone, a CPU run that the clock stopped
        after 33 of 2,000 steps was still warming up). With a time budget the schedule follows the clock, so such
        a run is not repeatable step for step; a step budget alone is."""
        progress = max(done / self.max_steps, seconds / self.max_seconds)
        return min(1.0, (done + 1) / self.warmup_steps()) * max(0.0, 1.0 - progress)


@dataclass
class PretrainingReport:
    steps: int
    seconds: float
    blocks: int
    tokens: int
    first_loss: float
    last_loss: float
    stopped_by: str
    loss_window: int
    loss_curve: list[float]  # mean loss of each tenth of the steps, to show it falling


def pretrain(
    model: torch.nn.Module,
    blocks: list[list[int]],
    collate: Any,
    budget: PretrainingBudget,
    accelerator: Accelerator | None = None,
) -> PretrainingReport:
    """Train until `max_steps` or `max_seconds`, whichever comes first, cycling over shuffled blocks.
    `first_loss` and `last_loss` are the means of the first and the final `loss_window` steps (50, or a quarter
    of the steps when fewer than 200 were made)."""
    if not blocks:
        raise ValueError("no text to pre-train on")
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    set_seed(budget.seed)
    loader: torch.utils.data.DataLoader[list[int]] = torch.utils.data.DataLoader(
        blocks,  # type: ignore[arg-type]  # torch types it Dataset; any sized, indexable sequence serves
        batch_size=budget.batch_size,
        shuffle=True,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(budget.seed),
    )
    if isinstance(model, BertForMaskedLM):
        model = MaskedPositionsOnly(model)  # trains the same parameters; the caller keeps the unwrapped model
    optimizer = torch.optim.AdamW(model.parameters(), lr=budget.lr, weight_decay=0.01)
    start, step, stopped_by = time.perf_counter(), 0, "max_steps"
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda done: budget.lr_factor(done, time.perf_counter() - start)
    )
    model, optimizer, loader, schedule = accelerator.prepare(model, optimizer, loader, schedule)
    model.train()
    losses: list[float] = []
    while step < budget.max_steps and stopped_by == "max_steps":
        for batch in loader:
            loss = model(**batch).loss
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
            step += 1
            if step >= budget.max_steps:
                break
            if time.perf_counter() - start >= budget.max_seconds:
                stopped_by = "max_seconds"
                break
    model.eval()
    window = max(1, min(LOSS_WINDOW, len(losses) // 4))  # the first and last windows never overlap
    return PretrainingReport(
        steps=step,
        seconds=round(time.perf_counter() - start, 1),
        blocks=len(blocks),
        tokens=sum(map(len, blocks)),
        first_loss=float(np.mean(losses[:window])),
        last_loss=float(np.mean(losses[-window:])),
        stopped_by=stopped_by,
        loss_window=window,
        loss_curve=[round(float(np.mean(c)), 3) for c in np.array_split(losses, min(10, len(losses)))],
    )


def save_language_model(
    model: PreTrainedModel, tokenizer: Any, directory: Path, record: dict[str, Any], report: PretrainingReport
) -> None:
    """The model, its tokenizer, and `pretraining.json` (what it was trained on, how long, the loss)."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    text = json.dumps({**record, "report": asdict(report)}, ensure_ascii=False, indent=2) + "\n"
    (directory / PRETRAINING_FILE).write_text(text, encoding="utf-8")
